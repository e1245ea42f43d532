"""A long-running process recomputes the intervals its batches touched after the commits
(``Store.defer_intervals``), every few seconds; the analysts' copy and retention recompute
before they read; on the way out a failing recompute must not hide the error that stopped
the run, and the intervals it left stay listed for the next open."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest

from pipeline.cli import services as services_module
from pipeline.cli.services import start_services
from pipeline.core.config import AnalystSettings, Config
from pipeline.core.store import Store
from pipeline.ops import analyst_copy
from pipeline.serve.refresher import at_most_every
from tests.helpers import engine, feed, frame, offered


def test_a_batch_leaves_its_intervals_listed_until_the_recompute(tmp_path: Path) -> None:
    eng = engine(tmp_path / "d.duckdb")
    try:
        eng.store.defer_intervals = True
        feed(eng, [offered("c1", 1), offered("c2", 2), offered("c3", 20)])
        assert frame(eng, "SELECT count(*) AS n FROM queue_interval")["n"][0] == 0
        eng.store.recompute_intervals()
        got = frame(eng, "SELECT strftime(interval_start, '%H:%M') AS at, offered FROM queue_interval ORDER BY 1")
        assert got.rows() == [("09:00", 2), ("09:15", 1)]  # 15-minute intervals
        assert frame(eng, "SELECT count(*) AS n FROM touched_q")["n"][0] == 0
    finally:
        eng.close()


def test_a_batch_leaves_its_callers_contacts_to_the_recompute(tmp_path: Path) -> None:
    """A caller's second call makes the first a repeat contact (call_state.next_contact_at):
    set by the recompute, with the intervals, not by the batch."""
    eng = engine(tmp_path / "d.duckdb")
    try:
        eng.store.defer_intervals = True
        feed(eng, [{**offered("c1", 1), "caller": "+15550001"}])
        eng.store.recompute_intervals()
        feed(eng, [{**offered("c2", 5), "caller": "+15550001"}])
        contacts = "SELECT call_id, strftime(next_contact_at, '%H:%M') AS next FROM call_state ORDER BY 1"
        assert frame(eng, contacts).rows() == [("c1", None), ("c2", None)]
        assert frame(eng, "SELECT count(DISTINCT caller_key) AS n FROM touched_callers")["n"][0] == 1
        eng.store.recompute_intervals()
        assert frame(eng, contacts).rows() == [("c1", "09:05"), ("c2", None)]
        assert frame(eng, "SELECT count(*) AS n FROM touched_callers")["n"][0] == 0
    finally:
        eng.close()


def test_a_failing_recompute_on_the_way_out_is_logged_and_left_for_the_next_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "d.duckdb"
    eng = engine(db)
    eng.store.defer_intervals = True
    feed(eng, [offered("c1", 1), offered("c2", 20)])

    def broken(self: Store, wm: Any) -> None:
        raise duckdb.IOException("No space left on device")

    monkeypatch.setattr(Store, "_recompute", broken)
    eng.drain()  # neither raises
    eng.close()
    assert caplog.text.count("interval aggregates left for the next start") == 2
    monkeypatch.undo()
    again = engine(db)
    try:
        got = frame(again, "SELECT strftime(interval_start, '%H:%M') AS at, offered FROM queue_interval ORDER BY 1")
        assert got.rows() == [("09:00", 1), ("09:15", 1)]
    finally:
        again.close()


def test_the_recompute_job_runs_at_its_first_call_then_once_its_period_has_passed() -> None:
    now = [100.0]
    ran: list[float] = []
    job = at_most_every(5.0, lambda: ran.append(now[0]), clock=lambda: now[0])
    for t in (100.0, 101.0, 104.9, 105.0, 106.0, 109.9, 110.5):
        now[0] = t
        job(None)  # type: ignore[arg-type]  # the engine's connection: the job does not use it
    assert ran == [100.0, 105.0, 110.5]


def _copied_offers(tmp_path: Path, settle: bool) -> list[tuple[str, int]]:
    """The queue intervals in the analysts' copy a deferring pipeline makes right after two
    batches, its copy job given the store's recompute to settle with (as attach does) or not."""
    cfg = Config(db=tmp_path / "d.duckdb", analyst=AnalystSettings(freshness_s=0.0))
    eng = engine(cfg.db, cfg)
    try:
        eng.store.defer_intervals = True
        feed(eng, [offered("c1", 1), offered("c2", 20)])
        job = analyst_copy.CopyJob(cfg, threaded=False, settle=eng.store.recompute_intervals if settle else None)
        job(eng.store.con)
        assert not job.errors and job.last is not None
    finally:
        eng.close()
    copy = duckdb.connect(str(analyst_copy.copy_path(cfg)), read_only=True)
    try:
        rows = copy.execute(
            "SELECT strftime(interval_start, '%H:%M'), offered FROM queue_interval ORDER BY 1"
        ).fetchall()
    finally:
        copy.close()
    return [(at, int(n)) for at, n in rows]


def test_the_analysts_copy_holds_the_intervals_of_every_batch_before_it(tmp_path: Path) -> None:
    assert _copied_offers(tmp_path / "settled", settle=True) == [("09:00", 1), ("09:15", 1)]
    # what the settling is for: without it the copy lacks the batches' intervals
    assert _copied_offers(tmp_path / "unsettled", settle=False) == []


def test_retention_and_the_copy_each_run_after_a_recompute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    order: list[str] = []
    monkeypatch.setattr(analyst_copy.retention, "apply", lambda *_a: order.append("retention"))
    cfg = Config(db=tmp_path / "d.duckdb", analyst=AnalystSettings(freshness_s=3600.0, retention_days=30))
    eng = engine(cfg.db, cfg)
    try:
        job = analyst_copy.CopyJob(cfg, threaded=False, settle=lambda: order.append("settle"))
        job(eng.store.con)  # both due at the first call
        assert not job.errors and job.last is not None
        assert order == ["settle", "retention", "settle"]
    finally:
        eng.close()


def test_a_running_pipelines_analysts_copy_holds_the_intervals_of_its_latest_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As the worker wires it: batches stored after the last recompute (not due again in
    this test) are in the intervals of the copy made next, on a backup's request."""
    monkeypatch.setattr(services_module, "INTERVALS_EVERY_S", 3600.0)
    cfg = Config(db=tmp_path / "d.duckdb", analyst=AnalystSettings(freshness_s=3600.0))
    eng = engine(cfg.db, cfg)
    services = start_services(eng, cfg, serve=False, refresh_every_s=1.0)  # recomputes, makes a copy
    try:
        job = services.refresher.jobs["analyst_copy"]
        job.wait(60)
        feed(eng, [offered("c1", 1), offered("c2", 20)])
        assert frame(eng, "SELECT count(*) AS n FROM touched_q")["n"][0] > 0  # listed, not recomputed
        analyst_copy.request_path(cfg).touch()  # as `callpulse backup` asks for a fresh copy
        services.refresher.refresh_now()  # the engine jobs now: the recompute is not due, the copy is
        job.wait(60)
        assert not job.errors and not analyst_copy.request_path(cfg).exists()
    finally:
        services.close()
        eng.close()
    copy = duckdb.connect(str(analyst_copy.copy_path(cfg)), read_only=True)
    try:
        rows = copy.execute("SELECT strftime(interval_start, '%H:%M'), offered FROM queue_interval ORDER BY 1")
        assert [(at, int(n)) for at, n in rows.fetchall()] == [("09:00", 1), ("09:15", 1)]
    finally:
        copy.close()
