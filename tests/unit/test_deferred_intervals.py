"""A long-running process recomputes the intervals its batches touched after the commits
(``Store.defer_intervals``); on the way out a failing recompute must not hide the error
that stopped the run, and the intervals it left stay listed for the next open."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest

from pipeline.core.store import Store
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
