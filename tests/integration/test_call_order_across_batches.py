"""A new call event is checked against what is stored of its call from earlier batches:
duplicates by key, an outcome before the stored offer, an end before the stored answer,
an offer after a stored outcome. Expected outcomes written by hand, on a real DuckDB."""

from __future__ import annotations

from typing import Any

from tests import helpers


def call(event: str, cid: str, hms: str, **extra: Any) -> dict[str, Any]:
    return {"type": "call", "event": event, "call_id": cid, "queue": "billing", "at": f"2026-03-02T{hms}Z", **extra}


def test_new_events_are_checked_against_the_stored_ones() -> None:
    eng = helpers.engine()
    helpers.feed(
        eng,
        [
            call("offered", "c1", "09:00:00"),
            call("answered", "c1", "09:01:00", agent_id="a1"),
            call("abandoned", "c2", "09:05:00"),  # its offer comes later, or never
            call("answered", "c3", "09:10:00", agent_id="a2"),
        ],
        "first",
    )
    second = [
        call("ended", "c1", "09:00:30", agent_id="a1"),  # 0: before the stored answer
        call("abandoned", "c1", "08:59:00"),  # 1: before the stored offer
        call("offered", "c2", "09:06:00"),  # 2: after the stored outcome
        call("offered", "c3", "09:09:00"),  # 3: before its stored answer: fine
        call("offered", "c1", "09:00:00"),  # 4: stored already
        call("answered", "c1", "09:02:00", agent_id="a1"),  # 5: key stored already (other time)
        call("ended", "c3", "09:20:00", agent_id="a2", talk_s=500),  # 6: fine
    ]
    result = eng.process(helpers.batch(second, "second"))
    assert (result.counts.accepted, result.counts.duplicates, result.counts.dead_lettered) == (2, 2, 3)
    dead = helpers.frame(eng, "SELECT position, reason FROM dead_letters WHERE source = 'second' ORDER BY position")
    assert dead.rows() == [
        ("0", "ended before answered"),
        ("1", "abandoned before offered"),
        ("2", "offered after the call's stored outcome"),
    ]
    c3 = helpers.one(eng, "SELECT offered_at, answered_at, ended_at, outcome, wait_s FROM calls WHERE call_id = 'c3'")
    assert (c3["outcome"], c3["wait_s"]) == ("answered", 60)
    c1 = helpers.one(eng, "SELECT ended_at, abandoned_at, outcome FROM calls WHERE call_id = 'c1'")
    assert (c1["ended_at"], c1["abandoned_at"], c1["outcome"]) == (None, None, "answered")
