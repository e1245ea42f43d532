"""Analysts query a read-only copy while the pipeline writes: concurrent `sql` and
`report` runs succeed, ingestion neither errs nor stalls, writes are refused clearly;
the [analyst] config section is validated."""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from devtools.procs import wait_until
from pipeline.core.config import AnalystSettings, Config, ConfigError, config_from_dict
from pipeline.core.records import Parsed, RawBatch
from pipeline.ingest.sources.simulator import SimConfig, simulate
from pipeline.ops import analyst_copy as analyst
from pipeline.ops import backup
from pipeline.serve.refresher import Published, Refresher
from tests.helpers import engine
from tests.support.cli import Cli

# -- config --------------------------------------------------------------------


def test_analyst_config_section() -> None:
    assert Config().analyst == AnalystSettings(freshness_s=60.0, copy=None, retention_days=None)
    cfg = config_from_dict({"analyst": {"freshness": "2m", "copy": "x/snap.duckdb", "retention_days": 400}})
    assert cfg.analyst == AnalystSettings(120.0, Path("x/snap.duckdb"), 400)
    assert analyst.copy_path(cfg) == Path("x/snap.duckdb")
    assert analyst.copy_path(Config(db=Path("d/cp.duckdb"))) == Path("d/cp.analyst.duckdb")
    for raw, message in [
        ({"fresh": 1}, r"analyst\.fresh: unknown key"),
        ({"freshness": "soon"}, r"analyst\.freshness: expected a duration"),
        ({"freshness": "0.5s"}, r"analyst\.freshness: must be at least 1s"),
        ({"retention_days": 0}, r"analyst\.retention_days: must be at least 1"),
        ({"retention_days": 1.5}, r"analyst\.retention_days: expected a whole number"),
        ({"copy": ""}, r"analyst\.copy: expected a non-empty string"),
        ({"snapshot": ""}, r"analyst\.snapshot: expected a non-empty string"),
        ({"snapshot": "a", "copy": "b"}, r"analyst\.snapshot and analyst\.copy are the same setting"),
        ("often", r"analyst: expected a table"),
    ]:
        with pytest.raises(ConfigError, match=message):
            config_from_dict({"analyst": raw})


def test_the_old_analyst_snapshot_key_still_works_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="callpulse.config"):
        cfg = config_from_dict({"analyst": {"snapshot": "x/old.duckdb"}})
    assert cfg.analyst.copy == Path("x/old.duckdb")
    assert "analyst.snapshot is deprecated; rename it to analyst.copy" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="callpulse.config"):
        config_from_dict({"analyst": {"copy": "x/new.duckdb"}})
    assert not caplog.text


# -- querying while the pipeline writes -----------------------------------------------


def paced_batches(records: list[dict[str, Any]], size: int) -> list[RawBatch]:
    return [
        RawBatch.from_items(
            "sim",
            [Parsed(str(i + j), json.dumps(r), r) for j, r in enumerate(records[i : i + size])],
        )
        for i in range(0, len(records), size)
    ]


def test_twenty_queries_and_a_report_while_ingesting(cli: Cli, tmp_path: Path) -> None:
    cfg = Config(db=tmp_path / "cp.duckdb", analyst=AnalystSettings(freshness_s=2.0))
    fed = list(simulate(SimConfig(seed=11, scale=0.6)))
    todo = paced_batches(fed, 250)
    eng = engine(cfg.db, cfg)
    refresher = Refresher(eng.store.con, Published(), every_s=0.5)  # as pipeline/serve/host.py wires it
    job = analyst.CopyJob(cfg)
    refresher.add("analyst_copy", job)
    eng.subscribe(refresher)
    done_at: list[float] = []
    errors: list[BaseException] = []
    stop = threading.Event()
    # The second half of the input is stored only once analysts hold the copy open, so the
    # test shows ingestion and copying go on beside them whatever the machine's speed.
    analysts_on = threading.Event()
    half = len(todo) // 2

    def ingest() -> None:
        try:
            for i, b in enumerate(todo):
                if i == half and not analysts_on.wait(300):
                    raise TimeoutError("the analysts never started")
                if stop.is_set():
                    break
                eng.process(b)
                done_at.append(time.monotonic())
            job.wait(60)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    feeder = threading.Thread(target=ingest)
    feeder.start()
    try:
        wait_until(lambda: analyst.copy_path(cfg).exists() or errors, timeout=60, what="the first analyst copy")
        assert not errors, errors
        wait_until(lambda: len(done_at) >= half or errors, timeout=120, what="the first half stored")
        # An analyst holding the copy open for the whole second half: a shared lock would stop
        # the engine or the copy job here and the wait below would time out.
        holder = duckdb.connect(str(analyst.copy_path(cfg)), read_only=True)
        holder.execute("BEGIN TRANSACTION")
        holder.execute("SELECT count(*) FROM calls").fetchall()
        copies_before = len(job.copy_ms)
        procs = [cli.analyst.popen("sql", CHECKABLE_QUERY, "--format", "json", "--db", str(cfg.db)) for _ in range(20)]
        html = tmp_path / "report.html"
        procs.append(
            cli.analyst.popen(
                "report",
                "interval",
                "--from",
                "2026-03-02",
                "--format",
                "html",
                "--out",
                str(html),
                "--db",
                str(cfg.db),
            )
        )
        analysts_on.set()
        wait_until(
            lambda: (len(done_at) >= half + 3 and len(job.copy_ms) > copies_before) or errors,
            timeout=300,
            what="batches stored and a fresh copy taken while an analyst holds the old one",
        )
        assert holder.execute("SELECT count(*) FROM calls").fetchone()[0] > 0
        holder.close()
        outputs = [(p.communicate(timeout=300), p.returncode) for p in procs]
    finally:
        analysts_on.set()
        stop.set() if errors else None
        feeder.join(300)
    eng_totals = eng.totals
    eng.close()

    assert not errors, errors
    assert not job.errors, job.errors
    # Each query's figures, checked against the fed records at the watermark its snapshot
    # reports on stderr (event times never decrease and whole batches are copied, so every
    # record before the watermark was stored and none is missing from the snapshot).
    seen_watermarks = set()
    for (out, err), code in outputs[:20]:
        assert code == 0, err
        assert "analyst copy cp.analyst.duckdb taken" in err and "pipeline running" in err
        said = re.search(r"; data up to (\S+)$", err.strip().splitlines()[0])
        assert said, err
        wm = datetime.fromisoformat(said.group(1))
        seen_watermarks.add(wm)
        rows = json.loads(out)
        assert rows and {datetime.fromisoformat(r["watermark"]) for r in rows} == {wm}, (rows, err)
        got = {r["queue"]: (r["events_before_wm"], r["offered_before_wm"], r["calls_before_wm"]) for r in rows}
        want = _figures_before(fed, wm)
        assert {q: got.get(q, (0, 0, 0)) for q in got | want} == {q: want.get(q, (0, 0, 0)) for q in got | want}, wm
        # All stored events: those before the watermark, and some or all of those at it.
        at_most = _figures_before(fed, wm, inclusive=True)
        for r in rows:
            assert want.get(r["queue"], (0,))[0] <= r["events"] <= at_most[r["queue"]][0], (r, wm)
        assert sum(r["calls"] for r in rows) > 0 and len(rows) >= 1
    (out, err), code = outputs[20]
    assert code == 0, err
    text = html.read_text()
    assert (
        text.startswith("<!DOCTYPE html>")
        and text.count("<svg") >= 3
        and "http://" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "")
    )
    assert eng_totals.batches == len(todo) and eng_totals.dead_lettered == 0
    assert eng_totals.accepted == eng_totals.read
    # The last snapshot holds everything once the engine is done.
    snap = duckdb.connect(str(analyst.copy_path(cfg)), read_only=True)
    info = backup.read_info(snap)
    assert info is not None and info["kind"] == "copy"
    snap.close()
    print(f"the 20 queries read {len(seen_watermarks)} snapshot watermark(s): {sorted(map(str, seen_watermarks))}")


# One row per queue from the snapshot, each figure taken up to the snapshot's own watermark.
CHECKABLE_QUERY = """
SELECT e.queue, p.watermark,
       count(*) FILTER (WHERE e.ts < p.watermark) AS events_before_wm,
       count(*) FILTER (WHERE e.event = 'offered' AND e.ts < p.watermark) AS offered_before_wm,
       (SELECT count(*) FROM calls c WHERE c.queue = e.queue AND c.offered_at < p.watermark) AS calls_before_wm,
       (SELECT count(*) FROM calls c WHERE c.queue = e.queue) AS calls,
       count(*) AS events
FROM call_events e CROSS JOIN pipeline_state p
WHERE p.id = 1
GROUP BY e.queue, p.watermark
ORDER BY e.queue
"""


def _figures_before(
    records: list[dict[str, Any]], watermark: datetime, inclusive: bool = False
) -> dict[str, tuple[int, int, int]]:
    """Per queue, from the fed records alone: (call events, offered events, calls offered) with
    event time before the watermark (or at it too, ``inclusive``)."""
    events: Counter[str] = Counter()
    offered: Counter[str] = Counter()
    calls: dict[str, set[str]] = {}
    for r in records:
        at = datetime.fromisoformat(r["at"])
        if r["type"] != "call" or at > watermark or (at == watermark and not inclusive):
            continue
        events[r["queue"]] += 1
        if r["event"] == "offered":
            offered[r["queue"]] += 1
            calls.setdefault(r["queue"], set()).add(r["call_id"])
    return {q: (events[q], offered[q], len(calls.get(q, ()))) for q in events}


# -- read-only -----------------------------------------------------------------------


@pytest.fixture()
def small_db(tmp_path: Path) -> Config:
    cfg = Config(db=tmp_path / "cp.duckdb")
    eng = engine(cfg.db, cfg)
    for b in paced_batches(list(simulate(SimConfig(seed=2, scale=0.05))), 5000):
        eng.process(b)
    eng.close()
    return cfg


@pytest.mark.parametrize(
    "statement",
    [
        "DELETE FROM call_events",
        "INSERT INTO breaches SELECT * FROM breaches",
        "CREATE TABLE mine AS SELECT 1",
        "DROP VIEW calls",
        "COPY (SELECT * FROM calls) TO 'calls.csv'",
        "ATTACH 'other.duckdb' AS other",
        "SET enable_external_access = true",
    ],
)
def test_an_analysts_write_is_refused_clearly(cli: Cli, small_db: Config, statement: str, tmp_path: Path) -> None:
    done = cli.analyst("sql", statement, "--db", str(small_db.db))
    assert done.returncode == 1
    assert "refused:" in done.stderr and "read-only" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert not (Path.cwd() / "calls.csv").exists() and not (tmp_path / "other.duckdb").exists()


def test_sql_formats_prompt_from_stdin_and_freshness(cli: Cli, small_db: Config) -> None:
    table = cli.analyst(
        "sql",
        "SELECT queue, count(*) AS calls FROM calls GROUP BY queue ORDER BY queue",
        "--db",
        str(small_db.db),
    )
    assert table.returncode == 0, table.stderr
    assert "billing" in table.stdout and "┃" in table.stdout
    assert "analyst copy cp.analyst.duckdb taken" in table.stderr and "pipeline stopped" in table.stderr
    csv_out = cli.analyst("sql", "SELECT 1 AS a, NULL AS b", "--format", "csv", "--db", str(small_db.db))
    assert csv_out.stdout == "a,b\n1,\n"
    piped = cli.analyst(
        "sql",
        "--format",
        "json",
        "--db",
        str(small_db.db),
        stdin="SELECT 1 AS a;\nSELECT count(*) AS n\n  FROM kpi_queue_daily;\nDELETE FROM call_events;\nSELECT 2 AS c\n",
    )
    assert piped.returncode == 1  # one statement was refused; the others ran
    docs = [json.loads(chunk) for chunk in piped.stdout.replace("]\n[", "]\x00[").split("\x00")]
    assert docs[0] == [{"a": 1}] and docs[1][0]["n"] > 0 and docs[2] == [{"c": 2}]
    assert "refused:" in piped.stderr
    bad = cli.analyst("sql", "SELEC 1", "--db", str(small_db.db))
    assert bad.returncode == 1 and "error:" in bad.stderr and "Traceback" not in bad.stderr


def test_the_copy_follows_the_database_when_no_pipeline_runs(cli: Cli, small_db: Config) -> None:
    first = cli.analyst("sql", "SELECT count(*) AS n FROM call_events", "--format", "csv", "--db", str(small_db.db))
    n = int(first.stdout.splitlines()[1])
    eng = engine(small_db.db, small_db)
    eng.process(
        paced_batches(
            [
                {
                    "type": "call",
                    "event": "offered",
                    "call_id": "new-1",
                    "queue": "billing",
                    "at": "2026-03-02T20:59:00+08:00",
                }
            ],
            10,
        )[0]
    )
    eng.close()
    again = cli.analyst("sql", "SELECT count(*) AS n FROM call_events", "--format", "csv", "--db", str(small_db.db))
    assert int(again.stdout.splitlines()[1]) == n + 1


def test_clear_message_when_nothing_to_query(cli: Cli, tmp_path: Path) -> None:
    done = cli.analyst("sql", "SELECT 1", "--db", str(tmp_path / "none.duckdb"))
    assert done.returncode == 2 and "no database yet" in done.stderr and "Traceback" not in done.stderr


def test_engine_closes_while_the_analysts_copy_is_being_made(tmp_path: Path) -> None:
    cfg = Config(db=tmp_path / "cp.duckdb", analyst=AnalystSettings(freshness_s=1.0))
    eng = engine(cfg.db, cfg)
    for b in paced_batches(list(simulate(SimConfig(seed=4, scale=0.3))), 20000):
        eng.process(b)
    job = analyst.CopyJob(cfg)
    job(eng.store.con)  # starts the copy beside the engine ...
    eng.close()  # ... and the engine shuts down at once: neither refuses nor breaks the other
    job.wait(60)
    assert not job.errors and job.last is not None
    snap = duckdb.connect(str(analyst.copy_path(cfg)), read_only=True)
    assert snap.execute("SELECT count(*) FROM call_events").fetchall()[0][0] > 0
    snap.close()
    assert not list(tmp_path.glob("*.tmp-*"))
    reopened = engine(cfg.db, cfg)  # the file lock was released
    reopened.close()


def test_kpis_while_a_pipeline_holds_the_database_reads_its_analyst_copy(cli: Cli, small_db: Config) -> None:
    def kpis() -> subprocess.CompletedProcess[str]:
        return cli("kpis", "--format", "json", "--db", small_db.db)

    free = kpis()  # no pipeline: read from the database itself
    assert free.returncode == 0, free.stderr
    assert cli.analyst("sql", "SELECT 1", "--db", str(small_db.db)).returncode == 0  # makes the snapshot
    writer = duckdb.connect(str(small_db.db))  # a "running pipeline" holds the file
    try:
        held = kpis()
    finally:
        writer.close()
    assert held.returncode == 0, held.stderr
    said = " ".join(held.stderr.split())  # rich wraps lines at the console width
    assert "in use by a running pipeline" in said and "analyst copy cp.analyst.duckdb" in said
    assert json.loads(held.stdout) == json.loads(free.stdout)


def test_without_a_checkpoint_the_copy_goes_table_by_table_and_gives_way(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the database cannot checkpoint, the copy reads every table instead: its thread (and,
    with one DuckDB thread, its queries) runs COPY_NICENESS above the engine thread, which
    keeps its own priority."""

    def nice() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    def refused(con: duckdb.DuckDBPyConnection) -> None:
        raise duckdb.IOException("no space left on device")  # what a full disk says

    seen: list[int] = []
    real = backup.copy_live

    def copy_live(*args: Any, **kwargs: Any) -> backup.CopyInfo:
        seen.append(nice())
        return real(*args, **kwargs)

    monkeypatch.setattr(backup, "hold_checkpoints", refused)
    monkeypatch.setattr(backup, "copy_live", copy_live)
    cfg = Config(db=tmp_path / "cp.duckdb")
    eng = engine(cfg.db, cfg)
    try:
        eng.process(paced_batches(list(simulate(SimConfig(seed=4, scale=0.1))), 500)[0])
        mine = nice()
        job = analyst.CopyJob(cfg)
        for _ in range(analyst.CHECKPOINT_TRIES - 1):  # a refused checkpoint is tried again at the next call
            job(eng.store.con)
        job.wait(60)
        assert job.last is None and not seen
        job(eng.store.con)  # ... and after that many refusals, the copy goes table by table
        job.wait(60)
        assert not job.errors and job.last is not None
        assert seen == [min(19, mine + analyst.COPY_NICENESS)]
        assert nice() == mine  # only the copy's thread
        copy = duckdb.connect(str(analyst.copy_path(cfg)), read_only=True)
        n = copy.execute("SELECT count(*) FROM call_events").fetchone()
        copy.close()
        assert n == eng.store.con.execute("SELECT count(*) FROM call_events").fetchone() and n[0] > 0
    finally:
        eng.close()


def test_the_file_copy_keeps_the_database_locked_and_checkpoints_resuming(cli: Cli, tmp_path: Path) -> None:
    """The copy is the database file copied right after a checkpoint: it holds the batches
    committed before it, not those committed while it copies. Copying must not drop the
    pipeline's lock on the file (a POSIX lock goes when this process closes any descriptor of
    the file), and automatic checkpoints, held off while it copies, come back."""
    cfg = Config(db=tmp_path / "cp.duckdb", analyst=AnalystSettings(freshness_s=0.0))
    eng = engine(cfg.db, cfg)

    def stored() -> int:
        return int(eng.store.con.execute("SELECT count(*) FROM call_events").fetchone()[0])

    def in_copy() -> tuple[int, str]:
        done = cli.analyst("sql", "SELECT count(*) AS n FROM call_events", "--format", "csv", "--db", str(cfg.db))
        assert done.returncode == 0, done.stderr
        return int(done.stdout.splitlines()[1]), " ".join(done.stderr.split())

    try:
        batches = paced_batches(list(simulate(SimConfig(seed=6, scale=0.2))), 2000)
        eng.process(batches[0])
        first = stored()
        threshold = eng.store.con.execute("SELECT current_setting('checkpoint_threshold')").fetchone()
        job = analyst.CopyJob(cfg)
        job(eng.store.con)
        for b in batches[1:3]:  # committed while the file may be copying: in the WAL, not in this copy
            eng.process(b)
        job.wait(60)
        assert not job.errors and job.last is not None
        assert eng.store.con.execute("SELECT current_setting('checkpoint_threshold')").fetchone() == threshold
        n, said = in_copy()
        assert "pipeline running" in said  # another process still cannot open the database
        assert n == first < stored()
        job(eng.store.con)
        job.wait(60)
        assert not job.errors
        assert in_copy()[0] == stored()
    finally:
        eng.close()
