"""Staffing now in the KPI snapshot: the window's calls, the patience from its abandons and
the agents logged in, on a scenario worked out by hand (queue billing, UTC):

  calls c0..c9  offered 09:00..09:09, answered after 10 s, talk 170 + wrap 10 = 180 s
  call  c10     offered 09:10, abandoned after 40 s
  call  c11     offered 09:11, abandoned after 2 s (a short abandon: under 5 s)
  call  c12     offered 09:13, still waiting at the watermark 09:14 (60 s so far)
  agents        a1 ready, a2 busy, a3 not ready (break), a4 logged out

15m window [08:59, 09:14]: offered 13, short abandons 1, so the model sees 12 calls in
900 s; AHT 180 s; abandons (not short) 1; waits 10·10 + 40 + 60 = 200 s, so the mean
patience is 200 s: Erlang A. Logged in (staffed) 3, ready 1. sales has 3 calls, fewer
than min_calls 10: no number.
"""

from __future__ import annotations

from typing import Any

import pytest

from metrics.kpi.snapshot import staffing_window, take_snapshot
from metrics.kpi.staffing import ERLANG_A, agents_needed_erlang_a
from pipeline.core.config import Config
from tests.helpers import engine, feed


def at(h: int, m: int, s: int = 0) -> str:
    return f"2026-03-02T{h:02d}:{m:02d}:{s:02d}Z"


def call(event: str, cid: str, when: str, queue: str = "billing", **extra: Any) -> dict[str, Any]:
    return {"type": "call", "event": event, "call_id": cid, "queue": queue, "at": when, **extra}


def agent(aid: str, state: str, when: str, **extra: Any) -> dict[str, Any]:
    return {"type": "agent", "agent_id": aid, "state": state, "at": when, **extra}


def scenario() -> list[dict[str, Any]]:
    records = []
    for i in range(10):
        records += [
            call("offered", f"c{i}", at(9, i)),
            call("answered", f"c{i}", at(9, i, 10), agent_id="a2"),
            call("ended", f"c{i}", at(9, i, 10 + 50), agent_id="a2", talk_s=170, hold_s=0, wrap_s=10),
        ]
    records += [
        call("offered", "c10", at(9, 10)),
        call("abandoned", "c10", at(9, 10, 40)),
        call("offered", "c11", at(9, 11)),
        call("abandoned", "c11", at(9, 11, 2)),
        call("offered", "c12", at(9, 13)),
    ]
    records += [call("offered", f"s{i}", at(9, i), queue="sales") for i in range(3)]
    for aid in ("a1", "a2", "a3", "a4"):
        records.append(agent(aid, "login", at(8, 50), queues=["billing"]))
    records += [
        agent("a1", "ready", at(8, 51)),
        agent("a2", "busy", at(8, 51)),
        agent("a4", "logout", at(9, 5)),
        agent("a3", "not_ready", at(9, 14), reason="break"),  # the watermark
    ]
    return records


@pytest.fixture(scope="module")
def snapshot():  # type: ignore[no-untyped-def]
    eng = engine()
    feed(eng, scenario())
    snap = take_snapshot(eng.store.con, Config().windows)
    eng.close()
    return snap


def test_the_staffing_window_is_the_one_as_long_as_the_interval(snapshot) -> None:  # type: ignore[no-untyped-def]
    assert snapshot.staffing_window == "15m"
    windows = (("5m", 300), ("15m", 900), ("1h", 3600))
    assert staffing_window(windows, 900) == ("15m", 900)
    assert staffing_window(windows, 300) == ("5m", 300)
    assert staffing_window(windows, 1800) == ("15m", 900)  # nearest: 900 s away, 1h is 1800 s
    assert staffing_window((), 900) is None


def test_needed_from_the_window_calls_and_patience_against_staffed(snapshot) -> None:  # type: ignore[no-untyped-def]
    q = snapshot.queues["billing"]
    need = q.staffing
    assert (need.calls, need.period_s, need.aht_s, need.patience_s) == (12, 900, 180.0, 200.0)
    expected = agents_needed_erlang_a(12, interval_s=900, aht_s=180, patience_s=200, target_s=15, sl_target=0.8)
    assert expected is not None
    assert (need.model, need.agents, need.why) == (ERLANG_A, expected.agents, None)
    assert (q.staffed(), q.agents_by_state()["ready"]) == (3, 1)
    staffing = snapshot.to_json()["queues"]["billing"]["staffing"]
    assert staffing == {
        "window": "15m",
        "agents_needed": expected.agents,
        "why": None,
        "model": "erlang_a",
        "agents_staffed": 3,
        "agents_ready": 1,
        "short_by": max(0, expected.agents - 3),
    }


def test_too_few_calls_give_no_number_and_say_why(snapshot) -> None:  # type: ignore[no-untyped-def]
    need = snapshot.queues["sales"].staffing
    assert (need.agents, need.why) == (None, "fewer than 10 calls")
    assert snapshot.to_json()["queues"]["sales"]["staffing"]["short_by"] is None
