"""`make bench BENCH_ARGS=--kafka`: the Kafka worker on its own real broker.

1. throughput: ~1M simulated events produced first, then consumed by the worker
   (in-process, the real ``KafkaWorker``): produced→stored events/s, with and without
   the consumer-group start-up;
2. latency: a producer in its own process sends at a steady rate (default 5,000
   events/s) while the worker runs, ``LATENCY_RUNS`` times with the default ``batch_within``,
   then once with 1 s; each message's Kafka timestamp (CreateTime, set when the producer
   appends it) is compared with the wall clock when its batch is stored (the
   worker's ``on_stored`` hook, on the engine thread): p50 / p99 / max.

Nothing here asserts a time; it reports. The broker is started and stopped here.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from devtools.bench import percentiles
from devtools.kafka import KafkaBroker
from pipeline.cli.services import start_services
from pipeline.core.config import Config, KafkaSettings
from pipeline.ingest.sources import kafka
from pipeline.ingest.sources.simulator import SimConfig, simulate
from pipeline.ingest.worker import KafkaWorker, WorkerOptions

console = Console()
KEY = b"bench-key"
OTHER_WITHIN_S = 1.0  # the latency run is repeated with this time bound, for comparison
# Runs at the default time bound: one run's p99 is set by its few slowest batches, and this
# machine's speed drifts, so one figure alone says little.
LATENCY_RUNS = 3


def _settings(broker: KafkaBroker, batch_size: int, within_s: float) -> KafkaSettings:
    tag = uuid.uuid4().hex[:8]
    return KafkaSettings(
        bootstrap=broker.bootstrap,
        group=f"bench-{tag}",
        topic_prefix=f"bench-{tag}.",
        batch_size=batch_size,
        batch_within_s=within_s,
    )


def throughput(
    broker: KafkaBroker, path: Path, db: Path, batch_size: int, within_s: float, partitions: int
) -> dict[str, float]:
    s = _settings(broker, batch_size, within_s)
    kafka.ensure_topics(s, partitions)
    started = time.perf_counter()
    with path.open("rb") as fh:
        n = kafka.produce_lines(fh, s)
    produce_s = time.perf_counter() - started
    batches: list[tuple[float, int]] = []  # when each batch was stored, and its size

    def stored(messages: list[kafka.Message]) -> None:
        batches.append((time.perf_counter(), len(messages)))

    cfg = Config(db=db, kafka=s)
    worker = KafkaWorker(
        cfg, KEY, WorkerOptions(max_events=n, serve=False), on_stored=stored, start_services=start_services
    )
    started = time.perf_counter()
    summary = worker.run()
    ended = time.perf_counter()
    total_s = ended - started
    # The whole run's fixed costs apart from the stream's: start (database, app, group
    # join, the first batch) and stop; between them the batches after the first.
    first_at = batches[0][0] if batches else ended
    last_at = batches[-1][0] if batches else ended
    steady_s = last_at - first_at
    assert worker.engine is not None
    return {
        "events": n,
        "produce_s": produce_s,
        "total_s": total_s,
        "steady_s": steady_s,
        "steady_events": sum(size for _, size in batches[1:]),
        "to_first_s": first_at - started,
        "stop_s": ended - last_at,
        "stored": summary.messages,
        "batches": summary.batches,
        "process_s": worker.engine.totals.seconds_in_process,
    }


def latency(
    broker: KafkaBroker, db: Path, rate: float, seconds: float, batch_size: int, within_s: float
) -> dict[str, Any]:
    s = _settings(broker, batch_size, within_s)
    kafka.ensure_topics(s, 3)
    n = int(rate * seconds)
    lat_ms: list[float] = []

    def stored(messages: list[kafka.Message]) -> None:
        now = time.time() * 1000
        lat_ms.extend(now - m.timestamp_ms for m in messages if m.timestamp_ms is not None)

    def produce() -> None:
        # Its own process, as a real producer is: simulating and encoding 5,000 events/s in
        # this one would hold the GIL against the worker being measured.
        subprocess.run(
            [sys.executable, "-m", "devtools.bench.kafka", s.bootstrap, s.topic_prefix, str(n), str(rate)], check=True
        )

    cfg = Config(db=db, kafka=s)
    worker = KafkaWorker(
        cfg,
        KEY,
        WorkerOptions(max_events=n, serve=False, duration_s=seconds * 3 + 60),
        on_stored=stored,
        start_services=start_services,
    )
    # The producer starts once the worker has its partitions (first batch would otherwise
    # include the group join): wait until the consumer group is up by a short warm-up.
    producer = threading.Timer(8.0, produce)
    producer.start()
    summary = worker.run()
    producer.join()
    assert worker.engine is not None
    lat_ms.sort()
    q = percentiles(lat_ms)
    return {
        "events": summary.messages,
        "p50_ms": q[49],
        "p99_ms": q[98],
        "max_ms": lat_ms[-1] if lat_ms else 0,
        "batches": summary.batches,
        "mean_batch": summary.messages / max(1, summary.batches),
        "process_ms": 1000 * worker.engine.totals.seconds_in_process / max(1, worker.engine.totals.batches),
    }


def run(
    events_path: Path,
    batch_size: int = KafkaSettings().batch_size,
    partitions: int = 3,
    rate: float = 5000.0,
    latency_s: float = 30.0,
    within_s: float = KafkaSettings().batch_within_s,
    latency_runs: int = LATENCY_RUNS,
) -> None:
    """Both runs use the worker's default batch knobs unless told otherwise."""
    work = Path(tempfile.mkdtemp(prefix="callpulse-bench-kafka-"))
    broker = KafkaBroker(heap="1g")
    try:
        with console.status("starting a Kafka broker ..."):
            broker.start()
        with console.status(f"throughput: producing {events_path} and consuming it ..."):
            t = throughput(broker, events_path, work / "throughput.duckdb", batch_size, within_s, partitions)
        # The default time bound (several runs), then another: latency against CPU spent on more batches.
        runs = [(within_s, i) for i in range(latency_runs)] + (
            [(OTHER_WITHIN_S, 0)] if within_s != OTHER_WITHIN_S else []
        )
        lats: list[tuple[float, dict[str, Any]]] = []
        for within, i in runs:
            with console.status(f"latency: {rate:,.0f} events/s for {latency_s:.0f} s, batch_within {within:g} s ..."):
                db = work / f"latency-{within:g}-{i}.duckdb"
                lats.append((within, latency(broker, db, rate, latency_s, batch_size, within)))
    finally:
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)
    table = Table(title="Kafka worker (faust-streaming → Engine.process → DuckDB)")
    for col in ("measure", "value"):
        table.add_column(col, justify="right")
    table.add_row("events produced", f"{t['events']:,.0f}")
    table.add_row("produce rate (aiokafka, batched)", f"{t['events'] / t['produce_s']:,.0f} events/s")
    table.add_row("produced→stored, whole run (incl. group join)", f"{t['stored'] / t['total_s']:,.0f} events/s")
    steady = f"{t['steady_events'] / t['steady_s']:,.0f} events/s" if t["steady_s"] > 0 else "one batch"
    table.add_row("produced→stored, batches after the first (first stored → last stored)", steady)
    table.add_row(
        "start → first batch stored / last stored → worker stopped", f"{t['to_first_s']:.1f} / {t['stop_s']:.1f} s"
    )
    table.add_row(
        "batches / time inside Engine.process", f"{t['batches']:,.0f} / {t['process_s']:.1f} s of {t['total_s']:.1f} s"
    )
    for within, lat in lats:
        table.add_row(
            f"latency at {rate:,.0f} events/s, batch_within {within:g} s: p50 / p99 / max",
            f"{lat['p50_ms']:,.0f} / {lat['p99_ms']:,.0f} / {lat['max_ms']:,.0f} ms",
        )
        table.add_row(
            "  events, mean batch, mean process()",
            f"{lat['events']:,} / {lat['mean_batch']:,.0f} / {lat['process_ms']:.0f} ms",
        )
    console.print(table)
    console.print("targets: ≥ 50,000 events/s whole run, p99 < 1 s", style="dim")


def _produce_paced(bootstrap: str, prefix: str, n: int, rate: float) -> None:
    """The latency run's producer: ``n`` simulated events at ``rate`` events/s."""
    settings = KafkaSettings(bootstrap=bootstrap, topic_prefix=prefix)
    records = (r for _, r in zip(range(n), simulate(SimConfig(seed=5, scale=20)), strict=False))
    # Simulated and encoded before the paced sending starts: this load generator shares the
    # machine's two cores with the worker it measures, and simulating 5,000 events/s in
    # Python took a third of a core from it.
    messages = list(kafka.route_records(records, kafka.topic_names(settings)))
    asyncio.run(kafka.produce_async(messages, settings, rate=rate))


if __name__ == "__main__":
    _produce_paced(sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
