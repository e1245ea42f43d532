"""`make bench`: end-to-end replay throughput against a plain DuckDB append baseline.

Both are measured in the same run on the same file, so the ratio holds on a noisy
machine where absolute rates don't. Nothing here asserts a time; it reports.
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

from pipeline.config import Config
from pipeline.engine import Engine
from pipeline.records import RAW_SCHEMA
from pipeline.sources import files
from pipeline.sources.simulator import SimConfig, simulate, write_jsonl

OUT = Path("bench-out")
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
    for batch in files.read_batches(str(path), batch_size):
        engine.process(batch)
    totals = engine.totals
    engine.close()
    elapsed = time.perf_counter() - started
    return totals.read, elapsed, {"batches": totals.batches, "in process()": sum(totals.batch_seconds)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=20.0, help="simulator scale (20 ≈ 1 million events)")
    parser.add_argument("--batch-size", type=int, default=Config().batch_size)
    args = parser.parse_args()
    path = ensure_events(args.scale)
    n_base, t_base = baseline(path, OUT / "baseline.duckdb")
    n, t, detail = pipeline_replay(path, OUT / "replay.duckdb", args.batch_size)
    table = Table(title=f"replay of {n:,} simulated events ({path})")
    for col in ("path", "events", "seconds", "events/s", "ratio to baseline"):
        table.add_column(col, justify="right")
    base_rate, rate = n_base / t_base, n / t
    table.add_row("baseline: polars parse + DuckDB Arrow append", f"{n_base:,}", f"{t_base:.2f}", f"{base_rate:,.0f}", "1.00")
    table.add_row(f"callpulse replay (batches of {args.batch_size:,})", f"{n:,}", f"{t:.2f}", f"{rate:,.0f}",
                  f"{rate / base_rate:.2f}")
    console.print(table)
    console.print(f"{detail['batches']:.0f} batches; {detail['in process()']:.2f} s inside Engine.process "
                  f"(validate + store + KPI refresh), the rest reading the file")


if __name__ == "__main__":
    main()
