"""A live batch reads what it needs, not the stored history (issue 16).

A worker that has run for weeks must cost per batch what it cost on its first days. Not
timed (tests never assert wall-clock limits): DuckDB's own profiling output says how many
rows each statement read from each table (tests/support/scans.py), for every statement a
batch runs on the engine's connection (the store's transaction, the breach check) and on
the publisher's (the pushed jobs: the snapshot, /metrics' counters, the wallboard's tiles).
The boards' heavier reads run on the refresher's own connection, between batches, and are
not counted here.

The same live batch (a minute of the ninth simulated day, after its first hours) is
stored after two days of history and after eight. What a batch reads is bounded by time
(its calls, its callers' repeat window, its agents' last hour, the widest rolling window);
a statement that reads the whole of a table holding the history (eight days: four times
the rows of two) fails. (A test-sized database can't be held to a count of rows: DuckDB
skips rows by blocks of thousands, and plans small joins differently.)
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from pipeline.cli import services as services_module
from pipeline.cli.services import start_services
from pipeline.core.config import Config
from pipeline.core.engine import Engine
from pipeline.core.records import RawBatch
from pipeline.ingest.sources import files
from pipeline.ingest.sources.simulator import SimConfig, simulate
from tests.support.scans import recording

KEY = b"batch-reads-test-key-0123456789"
DAYS = 8  # of history, for the large database; the small one keeps the last two
# The tables that grow with history (a row per event, call, interval or breach change).
HISTORY_TABLES = (
    "call_events",
    "call_state",
    "agent_events",
    "qa_evals",
    "queue_interval",
    "agent_interval",
    "dead_letters",
    "breach_log",
    "breaches",
)
LIVE_BATCH = 300
# Smaller tables are read in blocks that cover them whole, whatever a statement needs.
MIN_ROWS = 10_000
# Reads this share of a table: all of it, give or take the rows the batch just wrote.
WHOLE = 0.9
# Per-batch reads of the history still to bound, listed so that a new one fails and a
# listed one stays in view (none left: the open breaches are read through the breaches
# still open, not from the whole breach log).
KNOWN: set[str] = set()


def _batch(records: list[dict[str, Any]], first: int) -> RawBatch:
    lines = [json.dumps(r).encode() for r in records]
    return files.jsonl_batch(lines, [str(first + i) for i in range(len(lines))], "kafka:calls")


def _day_of(record: dict[str, Any]) -> str:
    return str(datetime.fromisoformat(record["at"]).date())


def _reads(
    records: list[dict[str, Any]], start: int, cut: int, db: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[dict[str, Counter[str]], dict[str, int]]:
    """Store ``records[start:cut]`` as history, then live batches; the last one's reads and
    the rows then stored per history table."""
    cfg = Config(db=db)
    # No analysts' copy: it checkpoints, and a checkpointed table is skipped by row groups
    # of 122,880 rows, more than this test's tables hold, so every read would look whole.
    # Before a checkpoint DuckDB skips by blocks of a few thousand rows: there a read that
    # grows with the history shows. (A month's tables span many row groups either way.)
    monkeypatch.setattr(services_module.analyst_copy, "attach", lambda services: None)
    engine = Engine.open(cfg, KEY)
    engine.process_all(_batch(records[i : min(i + 20_000, cut)], i) for i in range(start, cut, 20_000))
    services = start_services(engine, cfg, serve=False, refresh_every_s=1.0)
    try:
        engine.drain()  # the breach check catches up with the history
        for k in range(3):  # and a few live batches: the state a running worker is in
            engine.process(_batch(records[cut + k * LIVE_BATCH : cut + (k + 1) * LIVE_BATCH], cut + k * LIVE_BATCH))
        last = cut + 3 * LIVE_BATCH
        assert services.refresher.wait_published()  # the publisher idle before its connection is profiled
        cons = (engine.store.con, services.refresher.live_connection)
        with recording(cons, db.parent, monkeypatch) as scans:
            engine.process(_batch(records[last : last + LIVE_BATCH], last))
            engine.drain()  # the breach check now, not when its cadence says
            assert services.refresher.wait_published()
        stored = {
            t: int(engine.store.con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0])  # noqa: S608 - fixed names
            for t in HISTORY_TABLES
        }
    finally:
        services.close()
        engine.close()
    return scans.rows, stored


def test_a_live_batch_reads_as_much_after_eight_days_as_after_two(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = list(simulate(SimConfig(seed=3, days=DAYS + 1, scale=1.0)))
    days = sorted({_day_of(r) for r in records})
    ninth = [i for i, r in enumerate(records) if _day_of(r) == days[-1]]
    # The ninth day's first hours are history too: the live batch's agents have worked today
    # (a batch at shift start looks further back for them: see pipeline/core/lookback.py).
    cut = ninth[len(ninth) // 3]
    two_days = next(i for i, r in enumerate(records) if _day_of(r) == days[-3])
    (tmp_path / "small").mkdir()
    (tmp_path / "large").mkdir()
    small, small_stored = _reads(records, two_days, cut, tmp_path / "small" / "s.duckdb", monkeypatch)
    large, large_stored = _reads(records, 0, cut, tmp_path / "large" / "l.duckdb", monkeypatch)

    assert large_stored["call_state"] > 3.5 * small_stored["call_state"]  # the histories differ as meant
    assert large_stored["agent_events"] > 3.5 * small_stored["agent_events"]
    assert "ingest/refresh_batch_calls#1" in large and "kpi/queue_window" in large  # store and snapshot seen
    # A statement that reads (nearly) every row of a table holding the history scans it.
    scanned = {
        f"{name} reads {table}": f"{n:,} of its {large_stored[table]:,} rows ({small.get(name, Counter())[table]:,} "
        f"of {small_stored[table]:,} after 2 days)"
        for name, tables in large.items()
        for table, n in tables.items()
        if table in HISTORY_TABLES
        and large_stored[table] >= max(MIN_ROWS, 3.5 * small_stored[table])
        and n >= WHOLE * large_stored[table]
        and name not in KNOWN
    }
    assert scanned == {}, "\n".join(f"{k}: {v}" for k, v in sorted(scanned.items()))
