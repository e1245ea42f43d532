"""`make bench BENCH_ARGS="--only scale"`: throughput with 1, 2 and 3 workers in one group.

For each worker count, fresh topics (``PARTITIONS`` partitions each, the routed ones
included) receive the same simulated file first; then that many ``callpulse worker``
processes (``[kafka] route_by_queue``, one database each) start together in one
consumer group, and the clock runs from their start until every partition of every
topic — the forwarded agents_by_queue and qa_all included — is stored, as their
``/metrics`` report it (``callpulse_kafka_stored_offset`` against the broker's end
offsets). Events/s are the file's records over that time; the ratio is to one worker
in the same run, since the machine's speed drifts.

What to expect: every worker is a process of its own, so N workers can use N cores, but
they share this machine's two with the broker; the work is split by queue (a queue's
calls are one partition's), so the largest queue's worker sets the pace; and agent and
QA events are stored once by the partition's owner and again by each queue owner they
are forwarded to. Nothing here asserts a time; it reports.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

from rich.console import Console
from rich.table import Table

from devtools.kafka import KafkaBroker, create_topic, end_offsets
from devtools.procs import ManagedProcess, free_port, wait_until
from pipeline.core.config import KafkaSettings
from pipeline.ingest.sources import kafka
from pipeline.ingest.sources.routing import routed_topic_names

console = Console()
PARTITIONS = 6  # two per worker at three workers
PII_KEY = "bench-key-0123456789abcdef"
DONE_TIMEOUT_S = 900.0
_STORED = re.compile(r'^callpulse_kafka_stored_offset\{partition="(\d+)",topic="([^"]*)"\} (\S+)$', re.MULTILINE)


def stored_offsets(port: int) -> dict[tuple[str, int], int]:
    """The stored offset of each partition a worker holds, from its /metrics ({} before it serves)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return {}
    return {(topic, int(p)): int(float(v)) for p, topic, v in _STORED.findall(text)}


def _worker(work: Path, s: KafkaSettings, worker_id: str, port: int) -> ManagedProcess:
    home = work / worker_id
    home.mkdir()
    config = home / "callpulse.toml"
    config.write_text(f'[kafka]\nroute_by_queue = true\n\n[exporter]\nhost = "127.0.0.1"\nport = {port}\n')
    callpulse = str(Path(sys.executable).with_name("callpulse"))
    argv = [callpulse, "worker", "-c", str(config), "--db", str(work / "{worker}.duckdb"), "--worker-id", worker_id]
    argv += ["--bootstrap", s.bootstrap, "--group", s.group, "--topic-prefix", s.topic_prefix]
    env = {**os.environ, "CALLPULSE_PII_KEY": PII_KEY}
    return ManagedProcess(argv, work / f"{worker_id}.log", name=worker_id, cwd=home, env=env, stop_timeout=60)


def run_once(broker: KafkaBroker, lines: list[bytes], workers: int, work: Path) -> float:
    """Seconds from the workers' start until everything produced (and forwarded) is stored."""
    tag = uuid.uuid4().hex[:8]
    s = KafkaSettings(
        bootstrap=broker.bootstrap, group=f"scale-{tag}", topic_prefix=f"scale-{tag}.", route_by_queue=True
    )
    topics = {name: PARTITIONS for name in routed_topic_names(s).values()}
    for topic in topics:
        create_topic(s.bootstrap, topic, PARTITIONS)
    with console.status(f"producing {len(lines):,} records for {workers} worker(s) ..."):
        kafka.produce_lines(lines, s)
    ports = [free_port() for _ in range(workers)]
    (work / tag).mkdir()
    procs = [_worker(work / tag, s, f"w{i}", port) for i, port in enumerate(ports)]

    def done() -> bool:
        held: dict[tuple[str, int], int] = {}
        for proc, port in zip(procs, ports, strict=True):
            proc.check_alive()
            held.update(stored_offsets(port))
        ends = end_offsets(s.bootstrap, topics)  # the forwarded topics grow while the others are stored
        return all(held.get(tp, -1) == end - 1 for tp, end in ends.items() if end > 0)

    started = time.perf_counter()
    try:
        for proc in procs:
            proc.start()
        with console.status(f"{workers} worker(s) storing ..."):
            wait_until(done, DONE_TIMEOUT_S, f"{workers} worker(s) to store every message", interval=0.5)
        return time.perf_counter() - started
    finally:
        for proc in procs:
            proc.stop()
        shutil.rmtree(work / tag, ignore_errors=True)


def run(path: Path, counts: tuple[int, ...] = (1, 2, 3)) -> None:
    lines = path.read_bytes().splitlines()
    work = Path(tempfile.mkdtemp(prefix="callpulse-bench-scale-"))
    broker = KafkaBroker(heap="1g")
    seconds: dict[int, float] = {}
    try:
        with console.status("starting a Kafka broker ..."):
            broker.start()
        for n in counts:
            seconds[n] = run_once(broker, lines, n, work)
    finally:
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)
    table = Table(title=f"{len(lines):,} records ({path}), {PARTITIONS} partitions, workers in one group")
    for col in ("workers", "seconds", "events/s", "ratio to 1 worker"):
        table.add_column(col, justify="right")
    one = seconds.get(1)
    for n, t in seconds.items():
        ratio = f"{one / t:.2f}" if one else "—"
        table.add_row(str(n), f"{t:.1f}", f"{len(lines) / t:,.0f}", ratio)
    console.print(table)
    console.print(
        "from the workers' start (group join included) to the last partition stored; "
        f"{os.cpu_count()} cores shared with the broker",
        style="dim",
    )
