"""Analysts' side of `make bench`: reports over 30 days / 10 million calls, a 15-minute
rolling KPI query, and what a snapshot refresh costs the engine.

The 10 million calls are not simulated (that would take hours): ``call_state`` rows are
synthesized with ``generate_series`` (8 queues, 30 days, calls spread over each day,
outcomes and waits drawn from hashes), and ``queue_interval`` is then computed from
them with the pipeline's own ``queue_aggregates`` macro, so the aggregates are exactly
what the pipeline would hold. Reported, not asserted (targets: report < 500 ms,
rolling query < 50 ms).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
from rich.console import Console
from rich.table import Table

from pipeline.cli.analyst import build
from pipeline.core import sqlfiles
from pipeline.core.config import Config
from pipeline.core.store import Store
from pipeline.ops import analyst_copy as analyst
from pipeline.ops import backup

OUT = Path("bench-out")
START = datetime(2026, 3, 1, tzinfo=UTC)
DAYS = 30
QUEUES = ("billing", "sales", "support", "complaints", "loans", "cards", "fraud", "vip")
SYNTH_CALLS = """
INSERT INTO call_state
SELECT 'c' || i AS call_id,
       $queues[1 + (hash(i) % 8)::INT] AS queue,
       md5(CAST(hash(i, 7) % 2000000 AS VARCHAR)) AS caller_key, NULL AS caller_masked,
       'a-' || (hash(i, 3) % 400) AS agent_id,
       o AS offered_at,
       CASE WHEN r < 90 THEN o + to_seconds(w) END AS answered_at,
       CASE WHEN r >= 90 AND r < 97 THEN o + to_seconds(w) END AS abandoned_at,
       CASE WHEN r >= 97 THEN o + to_seconds(w) END AS exited_at,
       CASE WHEN r < 90 THEN o + to_seconds(w + 300) END AS ended_at,
       NULL AS transferred_at,
       CASE WHEN r < 90 THEN 240.0 + hash(i, 5) % 240 END AS talk_s, 0.0 AS hold_s, 30.0 AS wrap_s,
       NULL AS case_id, NULL AS category, NULL AS resolved,
       o AS contact_started_at, NULL AS next_contact_at
FROM (
    SELECT i, hash(i, 1) % 100 AS r, 1.0 + hash(i, 2) % 60 AS w,
           $start + to_seconds(CAST(i AS DOUBLE) * $span_s / $n) AS o
    FROM range($n) t(i)
)
"""


def build_db(path: Path, calls: int) -> Config:
    # The store writes the settings of its configured queues at open; these calls never
    # pass through it, so their queues are configured (with the defaults).
    cfg = Config(db=path, queues={q: Config().defaults for q in QUEUES})
    if path.exists():
        Store.open(path, cfg).close()  # an older build may lack the queues' settings
        return cfg
    OUT.mkdir(exist_ok=True)
    store = Store.open(path, cfg)
    con = store.con
    con.execute(SYNTH_CALLS, {"start": START, "span_s": DAYS * 86400.0, "n": calls, "queues": list(QUEUES)})
    end = START + timedelta(days=DAYS)
    con.execute(
        "INSERT INTO queue_interval BY NAME SELECT * FROM queue_aggregates($lo, $hi, 900)",
        {"lo": START, "hi": end},
    )
    con.execute("UPDATE pipeline_state SET watermark = $wm", {"wm": end - timedelta(seconds=1)})
    con.execute("CHECKPOINT")
    store.close()
    return cfg


def timed(fn: Callable[[], object], runs: int = 7) -> float:
    fn()  # warm
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def run_analyst_bench(calls: int = 10_000_000, console: Console | None = None) -> dict[str, float]:
    """Build (once) the 30-day database, snapshot it, and time the analysts' queries; returns ms figures."""
    console = console or Console()
    db = OUT / f"analyst-{calls}.duckdb"
    with console.status(f"synthesizing {calls:,} calls over {DAYS} days into {db} (once) ..."):
        started = time.perf_counter()
        cfg = build_db(db, calls)
        built_s = time.perf_counter() - started
    results: dict[str, float] = {"build_s": built_s}

    # The analysts' copy as a running pipeline makes it: the checkpoint the engine waits
    # for, then the file copy beside it; and, in the same run, the table-by-table copy it
    # falls back to when a checkpoint is refused.
    writer = duckdb.connect(str(db))
    sqlfiles.run(writer, "schema/writer_session")
    taken_at = datetime.now(UTC)
    started = time.perf_counter()
    backup.hold_checkpoints(writer)
    results["copy_engine_block_ms"] = (time.perf_counter() - started) * 1000
    try:
        info = backup.copy_checkpointed(db, analyst.copy_path(cfg), "copy", taken_at)
    finally:
        backup.release_checkpoints(writer)
    results["copy_file_ms"] = info.copy_ms
    by_table = backup.copy_live(writer.cursor(), OUT / "analyst-table-copy.duckdb", "copy", db)
    writer.close()
    results["copy_table_by_table_ms"] = by_table.copy_ms

    opened = analyst.open_copy(cfg)
    con = opened.con
    lo, hi = START, START + timedelta(days=DAYS)
    results["report_interval_30d_ms"] = timed(lambda: build(con, "interval", lo, hi, None, "Europe/Berlin"))
    results["report_daily_30d_ms"] = timed(lambda: build(con, "daily", lo, hi, None, "Europe/Berlin"))
    wm = con.execute("SELECT watermark FROM pipeline_state").fetchall()[0][0]
    rolling = sqlfiles.load("analyst/rolling_kpis")
    params = {"lo": wm - timedelta(minutes=15), "hi": wm}
    results["rolling_15m_ms"] = timed(lambda: con.execute(rolling, params).fetchall(), runs=21)
    results["rows_interval_report"] = float(build(con, "interval", lo, hi, None, "Europe/Berlin").height)
    con.close()

    table = Table(title=f"analysts: {calls:,} calls over {DAYS} days")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("target", justify="right")
    targets = {"report_interval_30d_ms": "< 500 ms", "rolling_15m_ms": "< 50 ms"}
    for name, value in results.items():
        table.add_row(name, f"{value:,.1f}", targets.get(name, ""))
    console.print(table)
    return results


if __name__ == "__main__":
    import sys

    run_analyst_bench(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000_000)
