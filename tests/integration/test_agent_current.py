"""Each agent's current state (agent_current, read by the boards on every refresh) is kept
per batch in agent_last: by hand, across batches, late events, ties at one instant, changes
of queues, and the refill of a database from a version whose agent_last had no reason or
queues."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from pipeline.core import sqlfiles
from tests.helpers import engine, feed, frame

BASE = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
CURRENT = "SELECT agent_id, started_at, state, reason, queues FROM agent_current ORDER BY agent_id"


def at(seconds: int) -> datetime:
    return BASE + timedelta(seconds=seconds)


def agent(state: str, seconds: int, who: str = "a1", **extra: Any) -> dict[str, Any]:
    return {"type": "agent", "agent_id": who, "state": state, "at": at(seconds).isoformat(), **extra}


def test_current_state_reason_and_queues_follow_the_latest_events(tmp_path: Path) -> None:
    db = tmp_path / "cp.duckdb"
    eng = engine(db)
    try:
        feed(eng, [agent("login", 0, queues=["q1", "q2"]), agent("ready", 10), agent("login", 0, "a2", queues=["q9"])])
        assert frame(eng, CURRENT).rows() == [
            ("a1", at(10), "ready", None, ["q1", "q2"]),
            ("a2", at(0), "login", None, ["q9"]),
        ]
        # A late event: older than the current state, which stays; its queues are newer
        # than the login's, so they are the agent's queues now.
        feed(eng, [agent("not_ready", 5, reason="break", queues=["q3"])])
        assert frame(eng, CURRENT).rows()[0] == ("a1", at(10), "ready", None, ["q3"])
        # Newer state, no queues reported: the queues stay.
        feed(eng, [agent("not_ready", 20, reason="lunch")])
        assert frame(eng, CURRENT).rows()[0] == ("a1", at(20), "not_ready", "lunch", ["q3"])
        # Two changes at one instant: the later in (ts, state) order lasts ('ready' > 'busy');
        # its reason (none) replaces the not-ready reason.
        feed(eng, [agent("ready", 30), agent("busy", 30, queues=["q4"])])
        assert frame(eng, CURRENT).rows()[0] == ("a1", at(30), "ready", None, ["q4"])
        # An older event reporting queues changes nothing: queues from t=30 are newer.
        feed(eng, [agent("wrap", 25, queues=["q5"])])
        assert frame(eng, CURRENT).rows()[0] == ("a1", at(30), "ready", None, ["q4"])
        before = frame(eng, "SELECT * FROM agent_last ORDER BY agent_id").rows()
    finally:
        eng.close()

    # What an older version leaves: agent_last without reason and queues. Opening the
    # database adds them and refills every row from agent_events.
    with duckdb.connect(str(db)) as con:
        for column in ("reason", "queues", "queues_ts", "queues_state"):
            con.execute(f"ALTER TABLE agent_last DROP COLUMN {column}")
    eng = engine(db)
    try:
        assert frame(eng, "SELECT * FROM agent_last ORDER BY agent_id").rows() == before
        assert frame(eng, CURRENT).rows()[0] == ("a1", at(30), "ready", None, ["q4"])
    finally:
        eng.close()


def test_boards_count_agents_per_queue_from_the_current_state() -> None:
    eng = engine()
    feed(eng, [
        agent("login", 0, "a1", queues=["q1", "q2"]), agent("ready", 10, "a1"),
        agent("login", 0, "a2", queues=["q1"]), agent("not_ready", 50, "a2", reason="break"),
        agent("login", 0, "a3", queues=["q2"]), agent("logout", 40, "a3"),
        agent("login", 0, "a4"), agent("ready", 5, "a4"),  # no queues reported: queue ''
    ])  # fmt: skip
    # Watermark at 50 s: a1 ready 40 s, a2 not ready 0 s, a3 logged out, a4 ready 45 s.
    rows = frame(eng, sqlfiles.load("kpi/agents_live")).rows()
    assert rows == [
        ("", "ready", "", 1, 45.0),
        ("q1", "not_ready", "break", 1, 0.0),
        ("q1", "ready", "", 1, 40.0),
        ("q2", "ready", "", 1, 40.0),
    ]
