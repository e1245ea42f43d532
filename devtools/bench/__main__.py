"""`make bench`: what callpulse costs, measured against baselines in the same run.

- replay: end-to-end replay of ~1M simulated events against a plain DuckDB Arrow
  append of the same rows (the ratio holds on a noisy machine where rates don't);
- kafka: the worker on its own real broker, produced→stored events/s and
  event-to-stored latency at a steady rate (devtools/bench/kafka.py);
- analyst: 30 days / 10M calls, the interval report and a 15-minute rolling query
  on the analysts' snapshot (devtools/bench/analyst.py);
- latency: black box, a `callpulse worker` subprocess on its own broker, live events at a
  steady rate → the first scrape of /metrics and of the wallboard's feed counting them,
  on an empty database and on a month (devtools/bench/latency.py);
- scale: the same file through 1, 2 and 3 `callpulse worker` processes in one consumer
  group (`route_by_queue`), produced→stored events/s against one worker
  (devtools/bench/scale.py).

`make bench` runs all five; `BENCH_ARGS="--only replay"` (repeatable) picks some.
Nothing here asserts a time; it reports.
"""

from __future__ import annotations

import argparse
import io
import time
from pathlib import Path

import duckdb
import polars as pl
from rich.console import Console
from rich.table import Table

from pipeline.core.config import Config
from pipeline.core.engine import Engine
from pipeline.core.records import RAW_SCHEMA
from pipeline.ingest.sources import files
from pipeline.ingest.sources.simulator import SimConfig, simulate, write_jsonl

OUT = Path("bench-out")
PARTS = ("replay", "kafka", "analyst", "latency", "scale")
console = Console()


def ensure_events(scale: float) -> Path:
    path = OUT / f"sim-scale{scale:g}.jsonl"
    if not path.exists():
        OUT.mkdir(exist_ok=True)
        with console.status(f"simulating (scale {scale:g}) into {path} ..."):
            write_jsonl(simulate(SimConfig(seed=1, scale=scale)), path)
    return path


def baseline(path: Path, db: Path) -> tuple[int, float]:
    """Parse the JSON lines with polars and append them to a DuckDB file through Arrow."""
    db.unlink(missing_ok=True)
    started = time.perf_counter()
    frame = pl.read_ndjson(io.BytesIO(path.read_bytes()), schema=RAW_SCHEMA)
    con = duckdb.connect(str(db))
    con.register("frame", frame.to_arrow())
    con.execute("CREATE TABLE events AS SELECT * FROM frame")
    con.close()
    return frame.height, time.perf_counter() - started


def pipeline_replay(path: Path, db: Path, batch_size: int) -> tuple[int, float, dict[str, float]]:
    """The real replay path: read, validate, store, refresh KPIs, batch by batch."""
    db.unlink(missing_ok=True)
    started = time.perf_counter()
    engine = Engine.open(Config(batch_size=batch_size), b"bench-key", db=db)
    totals = engine.process_all(files.read_batches(str(path), batch_size))
    engine.close()
    elapsed = time.perf_counter() - started
    return totals.read, elapsed, {"batches": totals.batches, "in process()": totals.seconds_in_process}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=20.0, help="simulator scale (20 ≈ 1 million events)")
    parser.add_argument("--batch-size", type=int, default=Config().batch_size)
    parser.add_argument("--only", action="append", choices=PARTS, help="run only these parts (repeatable)")
    parser.add_argument("--calls", type=int, default=10_000_000, help="calls in the analysts' 30-day database")
    parser.add_argument("--rate", type=float, default=5000.0, help="events/s for the Kafka latency run")
    parser.add_argument("--latency-rate", type=float, default=1000.0, help="events/s for the black-box latency run")
    parser.add_argument("--latency-seconds", type=float, default=60.0, help="seconds of producing per latency run")
    parser.add_argument(
        "--latency-db", action="append", choices=("empty", "month"), help="databases of the latency part (repeatable)"
    )
    parser.add_argument("--workers", type=int, action="append", help="worker counts of the scale part (repeatable)")
    args = parser.parse_args()
    parts = args.only or list(PARTS)
    path = ensure_events(args.scale) if {"replay", "kafka", "scale"} & set(parts) else None
    if "replay" in parts:
        assert path is not None
        replay_bench(path, args.batch_size)
    if "kafka" in parts:
        from devtools.bench import kafka

        assert path is not None
        kafka.run(path, rate=args.rate)
    if "analyst" in parts:
        from devtools.bench.analyst import run_analyst_bench

        run_analyst_bench(args.calls, console)
    if "latency" in parts:
        from devtools.bench import latency

        latency.run(args.latency_rate, args.latency_seconds, tuple(args.latency_db or ("empty", "month")))
    if "scale" in parts:
        from devtools.bench import scale

        assert path is not None
        scale.run(path, tuple(args.workers or (1, 2, 3)))


def replay_bench(path: Path, batch_size: int) -> None:
    n_base, t_base = baseline(path, OUT / "baseline.duckdb")
    n, t, detail = pipeline_replay(path, OUT / "replay.duckdb", batch_size)
    table = Table(title=f"replay of {n:,} simulated events ({path})")
    for col in ("path", "events", "seconds", "events/s", "ratio to baseline"):
        table.add_column(col, justify="right")
    base_rate, rate = n_base / t_base, n / t
    table.add_row(
        "baseline: polars parse + DuckDB Arrow append", f"{n_base:,}", f"{t_base:.2f}", f"{base_rate:,.0f}", "1.00"
    )
    table.add_row(
        f"callpulse replay (batches of {batch_size:,})", f"{n:,}", f"{t:.2f}", f"{rate:,.0f}", f"{rate / base_rate:.2f}"
    )
    console.print(table)
    console.print(
        f"{detail['batches']:.0f} batches; {detail['in process()']:.2f} s inside Engine.process "
        f"(validate + store + KPI refresh), the rest reading the file"
    )


if __name__ == "__main__":
    main()
