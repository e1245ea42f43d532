"""Backups taken while the pipeline writes are consistent, restore into a database the
pipeline resumes on, restore never overwrites by accident; retention deletes raw
events and keeps the aggregates."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from pipeline.core.config import AnalystSettings, Config
from pipeline.core.records import DeadLetter, Parsed, RawBatch, SourceOffset
from pipeline.core.store import listed_intervals
from pipeline.ingest.sources.simulator import SimConfig, simulate
from pipeline.ops import analyst_copy as analyst
from pipeline.ops import backup, retention
from tests.helpers import CLOCK, engine
from tests.support.cli import Cli

TABLES = [
    "call_events",
    "agent_events",
    "qa_evals",
    "dead_letters",
    "source_offsets",
    "pipeline_state",
    "queue_settings",
    "call_state",
    "queue_interval",
    "agent_interval",
    "breaches",
    "quality_reports",
]
VIEWS = [
    "calls",
    "kpi_queue_interval",
    "kpi_queue_hourly",
    "kpi_queue_daily",
    "kpi_agent_interval",
    "kpi_agent_daily",
    "agent_states",
    "cases",
    "kpi_case_resolution",
    "kpi_centre_interval",
    "call_quality",
    "kpi_quality_interval",
    "kpi_quality_agent_interval",
]


def batches(records: list[dict[str, Any]], size: int) -> list[RawBatch]:
    """Batches with a stored offset each (batch k has offset k), a bad line now and then."""
    out = []
    for k, i in enumerate(range(0, len(records), size)):
        items: list[Parsed | DeadLetter] = [
            Parsed(str(i + j), json.dumps(r), r) for j, r in enumerate(records[i : i + size])
        ]
        if k % 7 == 3:  # dead letters are copied too
            items.append(DeadLetter("sim", f"bad{k}", '{"type": "call", "event": "offered"', "malformed JSON: test"))
        out.append(RawBatch.from_items("sim", items, [SourceOffset("sim", 0, k)]))
    return out


def dump(db: Path | str) -> dict[str, list[tuple[Any, ...]]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return {name: con.execute(f"SELECT * FROM {name} ORDER BY ALL").fetchall() for name in TABLES + VIEWS}
    finally:
        con.close()


def feed(db: Path, cfg: Config, todo: list[RawBatch]) -> None:
    eng = engine(db, cfg)
    for b in todo:
        eng.process(b)
    eng.close()


@pytest.fixture(scope="module")
def day() -> list[RawBatch]:
    return batches(list(simulate(SimConfig(seed=5, scale=0.3, quality=True))), 400)


def test_backup_mid_run_restores_equal_and_the_pipeline_resumes(cli: Cli, day: list[RawBatch], tmp_path: Path) -> None:
    cfg = Config(db=tmp_path / "live.duckdb", analyst=AnalystSettings(freshness_s=3600))
    eng = engine(cfg.db, cfg)
    job = analyst.CopyJob(cfg)
    eng.subscribe(lambda _r: job(eng.store.con))
    errors: list[BaseException] = []
    done = threading.Event()

    def run() -> None:
        try:
            for b in day:
                eng.process(b)
                time.sleep(0.03)
            job.wait(30)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            done.set()

    worker = threading.Thread(target=run)
    worker.start()
    try:
        time.sleep(1.0)
        dest = tmp_path / "backup.duckdb"
        run_backup = cli.analyst("backup", dest, "--db", cfg.db, "--wait", "60")
        mid_run = not done.is_set()
    finally:
        worker.join(120)
        eng.close()
    assert not errors, errors
    assert not job.errors, job.errors
    assert run_backup.returncode == 0, run_backup.stderr
    assert "pipeline running: copied the analysts' copy it made on request" in run_backup.stderr
    assert mid_run, "the pipeline finished before the backup: make the run longer"

    # Which batches the backup holds: its stored offset says (offsets are saved with the rows).
    con = duckdb.connect(str(dest), read_only=True)
    (last,) = con.execute('SELECT "offset" FROM source_offsets WHERE source = $s', {"s": "sim"}).fetchall()[0]
    info = backup.read_info(con)
    con.close()
    assert info is not None and info["kind"] == "backup"
    assert 0 < last < len(day) - 1

    restored = tmp_path / "restored.duckdb"
    run_restore = cli.analyst("restore", dest, restored)
    assert run_restore.returncode == 0, run_restore.stderr

    # Equal to the source as of the backup: a fresh database fed the same batches 0..last.
    reference = tmp_path / "reference.duckdb"
    feed(reference, cfg, day[: last + 1])
    assert dump(restored) == dump(reference)
    con = duckdb.connect(str(restored), read_only=True)
    assert not con.execute("SELECT * FROM duckdb_tables() WHERE table_name = 'snapshot_info'").fetchall()
    con.close()

    # The pipeline resumes on the restored file: the rest of the day gives the same KPIs as one run.
    feed(restored, cfg, day[last + 1 :])
    whole = tmp_path / "whole.duckdb"
    feed(whole, cfg, day)
    assert dump(restored) == dump(whole)


def test_restore_refuses_to_overwrite_without_force(cli: Cli, day: list[RawBatch], tmp_path: Path) -> None:
    cfg = Config(db=tmp_path / "cp.duckdb")
    feed(cfg.db, cfg, day[:5])
    bak, target = tmp_path / "b.duckdb", tmp_path / "target.duckdb"
    backup.copy_file(cfg.db, bak)
    feed(target, cfg, day[:1])
    before = dump(target)

    def restore(*extra: str) -> subprocess.CompletedProcess[str]:
        return cli.analyst("restore", bak, target, *extra)

    refused = restore()
    assert refused.returncode == 2 and "already exists" in refused.stderr and "--force" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert dump(target) == before
    forced = restore("--force")
    assert forced.returncode == 0, forced.stderr
    assert dump(target) == dump(cfg.db)
    with pytest.raises(backup.CopyError, match="not a callpulse database"):
        empty = tmp_path / "empty.duckdb"
        duckdb.connect(str(empty)).close()
        backup.restore(empty, tmp_path / "x.duckdb")


def test_backup_of_a_stopped_pipeline_and_refusal_to_overwrite(cli: Cli, day: list[RawBatch], tmp_path: Path) -> None:
    cfg = Config(db=tmp_path / "cp.duckdb")
    feed(cfg.db, cfg, day[:3])
    dest = tmp_path / "b.duckdb"
    first = cli.analyst("backup", dest, "--db", cfg.db)
    assert first.returncode == 0 and "pipeline stopped" in first.stderr, first.stderr
    again = cli.analyst("backup", dest, "--db", cfg.db)
    assert again.returncode == 2 and "exists" in again.stderr


def test_retention_deletes_old_raw_events_and_keeps_aggregates(tmp_path: Path) -> None:
    records = list(simulate(SimConfig(seed=7, day=date(2026, 3, 2), days=3, scale=0.1)))
    cfg = Config(db=tmp_path / "cp.duckdb", analyst=AnalystSettings(retention_days=1))
    todo = batches(records, 2000)
    feed(cfg.db, cfg, todo)
    kept = [
        "queue_interval",
        "agent_interval",
        "breaches",
        "call_state",
        "kpi_queue_interval",
        "kpi_queue_daily",
        "kpi_agent_interval",
        "kpi_agent_daily",
        "calls",
        "cases",
        "kpi_case_resolution",
        "kpi_centre_interval",
    ]
    before = dump(cfg.db)
    con = duckdb.connect(str(cfg.db))
    wm = con.execute("SELECT watermark FROM pipeline_state").fetchall()[0][0]
    # Dead letters were received at the tests' clock; "now" two days later makes them old.
    result = retention.apply(con, 1, CLOCK + timedelta(days=2))
    cut = wm - timedelta(days=1)
    assert result.events_before == cut
    assert result.deleted["call_events"] > 0 and result.deleted["dead_letters"] > 0
    for table in ("call_events", "qa_evals"):
        assert con.execute(f"SELECT count(*) FROM {table} WHERE ts < $c", {"c": cut}).fetchall()[0][0] == 0
        assert con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0] > 0
    assert con.execute("SELECT count(*) FROM dead_letters").fetchall()[0][0] == 0
    # Each agent keeps its latest event (the state it is still in); older ones go.
    agents_now = con.execute("SELECT agent_id, max(ts) FROM agent_events GROUP BY ALL ORDER BY ALL").fetchall()
    con.close()
    after = dump(cfg.db)
    for name in kept:
        assert after[name] == before[name], name
    latest = sorted({(a, max(t for b, t, *_ in before["agent_events"] if b == a)) for a, *_ in before["agent_events"]})
    assert agents_now == latest
    # Nothing left to delete: a second run deletes nothing.
    con = duckdb.connect(str(cfg.db))
    assert not any(retention.apply(con, 1, CLOCK + timedelta(days=2)).deleted.values())
    con.close()


def test_retention_runs_inside_a_running_pipeline_and_from_the_cli(cli: Cli, tmp_path: Path) -> None:
    records = list(simulate(SimConfig(seed=8, day=date(2026, 3, 2), days=3, scale=0.05)))
    cfg = Config(db=tmp_path / "cp.duckdb", analyst=AnalystSettings(retention_days=2, freshness_s=3600))
    eng = engine(cfg.db, cfg)
    job = analyst.CopyJob(cfg, clock=lambda: CLOCK, threaded=False)
    for b in batches(records, 3000):
        eng.process(b)
    job(eng.store.con)  # retention, then a snapshot
    wm = eng.store.watermark()
    oldest = eng.store.con.execute("SELECT min(ts) FROM call_events").fetchall()[0][0]
    eng.close()
    assert oldest >= wm - timedelta(days=2)
    snap = duckdb.connect(str(analyst.copy_path(cfg)), read_only=True)
    assert snap.execute("SELECT min(ts) FROM call_events").fetchall()[0][0] == oldest
    snap.close()
    run = cli.analyst("retention", "--days", "1", "--db", cfg.db)
    assert run.returncode == 0 and "deleted: call_events" in run.stderr, run.stderr
    con = duckdb.connect(str(cfg.db), read_only=True)
    assert con.execute("SELECT min(ts) FROM call_events").fetchall()[0][0] >= wm - timedelta(days=1)
    con.close()
    assert datetime.now(UTC) > CLOCK  # the CLI uses the wall clock for dead letters


def test_retention_first_recomputes_what_a_killed_pipeline_left_listed(cli: Cli, tmp_path: Path) -> None:
    """A pipeline killed between a batch and its deferred recompute leaves intervals (and
    callers' contacts) listed, whose recompute may need the events retention deletes:
    `callpulse retention` recomputes them first, by the database's own settings, and ends
    as retention on the same pipeline stopped normally does; `kpis` says they are listed."""
    records = list(simulate(SimConfig(seed=8, day=date(2026, 3, 2), days=3, scale=0.05)))
    cfg = Config(db=tmp_path / "killed.duckdb")
    stopped = tmp_path / "stopped.duckdb"
    for db, killed in ((cfg.db, True), (stopped, False)):
        eng = engine(db, cfg)
        eng.store.defer_intervals = True
        for b in batches(records, 3000):
            eng.process(b)
        if killed:
            eng.store.con.close()  # as a SIGKILL leaves it: no recompute on the way out
        else:
            eng.close()
    con = duckdb.connect(str(cfg.db))
    listed = listed_intervals(con)
    con.close()
    assert listed > 0

    kpis = cli("kpis", "--db", cfg.db)
    assert kpis.returncode == 0, kpis.stderr
    assert f"stopped before recomputing {listed:,} interval aggregates" in kpis.stderr
    # The analysts' copy of the stopped database has them recomputed (the database itself not).
    query = "SELECT (SELECT count(*) FROM touched_q), (SELECT sum(offered) FROM queue_interval)"
    copies = [cli.analyst("sql", query, "--db", db, "--format", "csv") for db in (cfg.db, stopped)]
    assert all(c.returncode == 0 for c in copies), [c.stderr for c in copies]
    assert copies[0].stdout == copies[1].stdout and copies[0].stdout.splitlines()[1].startswith("0,")
    dry = cli.analyst("retention", "--days", "1", "--db", cfg.db, "--dry-run")
    assert dry.returncode == 0 and "would delete: call_events" in dry.stderr, dry.stderr
    assert f"would recompute first: {listed:,} interval aggregates" in dry.stderr
    events = _rows(cfg.db, "SELECT count(*) FROM call_events")
    for db in (cfg.db, stopped):
        done = cli.analyst("retention", "--days", "1", "--db", db)
        assert done.returncode == 0 and "deleted: call_events" in done.stderr, done.stderr
        assert ("recomputed first" in done.stderr) == (db == cfg.db), done.stderr
        assert "Traceback" not in done.stderr
    assert _rows(cfg.db, "SELECT count(*) FROM call_events")[0][0] < events[0][0]
    for table in ("queue_interval", "agent_interval", "call_state", "touched_q", "touched_a", "touched_callers"):
        query = f"SELECT * FROM {table} ORDER BY ALL"
        assert _rows(cfg.db, query) == _rows(stopped, query), table


def test_a_failing_recompute_of_a_killed_pipeline_s_database_deletes_nothing_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from typer.testing import CliRunner

    from pipeline.cli.main import app
    from pipeline.core.store import Store

    records = list(simulate(SimConfig(seed=8, day=date(2026, 3, 2), days=2, scale=0.05)))
    cfg = Config(db=tmp_path / "killed.duckdb")
    eng = engine(cfg.db, cfg)
    eng.store.defer_intervals = True
    for b in batches(records, 3000):
        eng.process(b)
    eng.store.con.close()  # killed: intervals left listed
    events = _rows(cfg.db, "SELECT count(*) FROM call_events")

    def broken(self: Store, wm: Any) -> None:
        raise duckdb.IOException("No space left on device")

    monkeypatch.setattr(Store, "_recompute", broken)
    result = CliRunner().invoke(app, ["retention", "--days", "1", "--db", str(cfg.db)])
    assert result.exit_code == 2, result.output
    assert "retention failed, nothing deleted" in result.output and "No space left" in result.output
    assert _rows(cfg.db, "SELECT count(*) FROM call_events") == events
    # The analysts' copy is still made, as the pipeline left it, with a warning.
    snap, running = analyst.ensure_copy(cfg)
    assert not running and _rows(snap, "SELECT count(*) FROM touched_q")[0][0] > 0
    assert "were not recomputed (No space left on device)" in caplog.text


def _rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_a_setting_change_after_retention_keeps_the_kpi_history(tmp_path: Path) -> None:
    """Changing a queue KPI setting (or the interval length) recomputes the queue KPIs for
    every day, also those whose raw events retention deleted: they must equal a fresh
    pipeline fed every event under the new settings. Agent intervals are kept when only
    queue settings change."""
    from dataclasses import replace

    from pipeline.core.config import QueueSettings

    records = list(simulate(SimConfig(seed=7, day=date(2026, 3, 2), days=3, scale=0.05)))
    todo = batches(records, 2000)
    old = Config(db=tmp_path / "cp.duckdb")
    feed(old.db, old, todo)
    con = duckdb.connect(str(old.db))
    assert retention.apply(con, 1, CLOCK).deleted["call_events"] > 0
    con.close()
    agents_before = _rows(old.db, "SELECT * FROM agent_interval ORDER BY ALL")
    queue_sql = "SELECT * FROM kpi_queue_interval ORDER BY ALL"

    new = replace(old, defaults=QueueSettings(sl_threshold_s=40.0, short_abandon_s=12.0))
    engine(old.db, new).close()  # opening with new settings resettles the aggregates
    expected = tmp_path / "fresh.duckdb"
    feed(expected, replace(new, db=expected), todo)
    got = _rows(old.db, queue_sql)
    assert len({r[1].date() for r in got}) >= 3  # every day, not only the kept one
    assert got == _rows(expected, queue_sql)
    assert _rows(old.db, "SELECT * FROM agent_interval ORDER BY ALL") == agents_before

    hourly = replace(new, interval_s=3600)
    engine(old.db, hourly).close()
    expected_h = tmp_path / "fresh-hourly.duckdb"
    feed(expected_h, replace(hourly, db=expected_h), todo)
    assert _rows(old.db, queue_sql) == _rows(expected_h, queue_sql)
