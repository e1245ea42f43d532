"""KPI values on hand-built scenarios, checked against numbers worked out by hand.

The scenario (queue billing, site +08:00, interval 09:00-09:15 local):

  call  offered   outcome            wait  talk hold wrap  agent caller case
  c1    09:00:00  answered 09:00:10   10   170   10   20   a1    X      K1 dispute (unresolved)
  c2    09:01:00  answered 09:01:20   20   200    0   40   a2    Y      K2 dispute resolved; transferred
  c3    09:02:00  abandoned 09:02:03   3  (short abandon)         -
  c4    09:03:00  abandoned 09:03:12  12  (abandoned within 15 s)
  c5    09:04:00  abandoned 09:04:40  40                         X      K3 card (unresolved)
  c6    09:05:00  exited 09:07:00    120
  c7    09:06:00  answered 09:06:15   15   120    -    -   a1    X      K1 resolved
  c8    09:14:00  still waiting at the watermark (09:20:00)

offered 8, answered 3, abandoned 3 (1 short), exited 1, waiting 1,
answered within 15 s: c1, c7 = 2; abandoned within 15 s (not short): c4 = 1.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from pipeline.core.config import config_from_dict
from tests.helpers import engine, feed, frame, one

TZ = timezone(timedelta(hours=8))


def at(hms: str) -> str:
    return f"2026-03-02T{hms}+08:00"


def utc(hms: str) -> datetime:
    h, m, s = map(int, hms.split(":"))
    return datetime(2026, 3, 2, h, m, s, tzinfo=TZ).astimezone(UTC)


def call(event: str, cid: str, hms: str, **extra: Any) -> dict[str, Any]:
    return {"type": "call", "event": event, "call_id": cid, "queue": "billing", "at": at(hms), **extra}


X, Y = "+8613800000001", "+8613800000002"

SCENARIO: list[dict[str, Any]] = [
    call("offered", "c1", "09:00:00", caller=X, case_id="K1", category="dispute"),
    call("answered", "c1", "09:00:10", agent_id="a1"),
    call("ended", "c1", "09:03:10", agent_id="a1", talk_s=170, hold_s=10, wrap_s=20, resolved=False),
    call("offered", "c2", "09:01:00", caller=Y, case_id="K2", category="dispute"),
    call("answered", "c2", "09:01:20", agent_id="a2"),
    call("ended", "c2", "09:05:20", agent_id="a2", talk_s=200, hold_s=0, wrap_s=40, resolved=True),
    call("transferred", "c2", "09:05:20", agent_id="a2"),
    call("offered", "c3", "09:02:00"),
    call("abandoned", "c3", "09:02:03"),
    call("offered", "c4", "09:03:00"),
    call("abandoned", "c4", "09:03:12"),
    call("offered", "c5", "09:04:00", caller=X, case_id="K3", category="card"),
    call("abandoned", "c5", "09:04:40"),
    call("offered", "c6", "09:05:00"),
    call("exited", "c6", "09:07:00"),
    call("offered", "c7", "09:06:00", caller=X, case_id="K1", category="dispute"),
    call("answered", "c7", "09:06:15", agent_id="a1"),
    call("ended", "c7", "09:08:15", agent_id="a1", talk_s=120, resolved=True),
    call("offered", "c8", "09:14:00"),
    {"type": "agent", "agent_id": "a1", "state": "login", "at": at("08:55:00"), "queues": ["billing"]},
    {"type": "agent", "agent_id": "a1", "state": "ready", "at": at("08:55:05")},
    {"type": "agent", "agent_id": "a1", "state": "busy", "at": at("09:00:10")},
    {"type": "agent", "agent_id": "a1", "state": "wrap", "at": at("09:03:10")},
    {"type": "agent", "agent_id": "a1", "state": "ready", "at": at("09:03:30")},
    {"type": "agent", "agent_id": "a1", "state": "busy", "at": at("09:06:15")},
    {"type": "agent", "agent_id": "a1", "state": "ready", "at": at("09:08:15")},
    {"type": "agent", "agent_id": "a1", "state": "not_ready", "reason": "break", "at": at("09:10:00")},
    {"type": "agent", "agent_id": "a1", "state": "ready", "at": at("09:12:00")},
    {"type": "agent", "agent_id": "a1", "state": "logout", "at": at("09:20:00")},
    {"type": "qa", "call_id": "c1", "agent_id": "a1", "score": 80, "at": at("09:10:00"), "evaluator": "eva"},
    {"type": "qa", "call_id": "c7", "agent_id": "a1", "score": 90, "at": at("09:11:00"), "evaluator": "eva"},
]

# Service level by formula, by hand: offered 8 - 1 short = 7.
SL = {
    "negative": 2 / 7,  # answered_in_sl / (offered - short)
    "without_abandons": 2 / 6,  # answered_in_sl / (offered - short - abandoned within T)
    "positive": 3 / 7,  # (answered_in_sl + abandoned within T) / (offered - short)
    "answered_only": 2 / 3,  # answered_in_sl / answered
}


@pytest.fixture
def billing_interval() -> dict[str, Any]:
    eng = engine()
    feed(eng, SCENARIO)
    return one(
        eng, "SELECT * FROM kpi_queue_interval WHERE queue = 'billing' AND interval_start = ?", [utc("09:00:00")]
    )


def test_queue_interval_counts(billing_interval: dict[str, Any]) -> None:
    r = billing_interval
    assert r["interval_s"] == 900
    assert (r["offered"], r["answered"], r["abandoned"], r["short_abandoned"], r["exited"]) == (8, 3, 3, 1, 1)
    assert r["answered_in_sl"] == 2
    assert r["waiting"] == 1


def test_queue_interval_ratios(billing_interval: dict[str, Any]) -> None:
    r = billing_interval
    assert r["service_level"] == pytest.approx(2 / 7)
    assert r["asa_s"] == pytest.approx((10 + 20 + 15) / 3)
    assert r["abandon_rate"] == pytest.approx((3 - 1) / (8 - 1))
    assert r["aht_s"] == pytest.approx((200 + 240 + 120) / 3)
    assert r["transfer_rate"] == pytest.approx(1 / 3)
    assert r["max_wait_s"] == 120
    # c1's caller X calls again (c5 at 09:04) within 24 h; c2 (Y) and c7 (X, last call) don't.
    assert r["repeat_rate"] == pytest.approx(1 / 3)
    assert r["fcr"] == pytest.approx(2 / 3)


@pytest.mark.parametrize("formula", sorted(SL))
def test_every_service_level_formula(formula: str) -> None:
    eng = engine(config=config_from_dict({"defaults": {"sl_formula": formula}}))
    feed(eng, SCENARIO)
    r = one(
        eng,
        "SELECT service_level FROM kpi_queue_interval WHERE queue = 'billing' AND interval_start = ?",
        [utc("09:00:00")],
    )
    assert r["service_level"] == pytest.approx(SL[formula])


def test_cisco_published_example_all_formulas() -> None:
    """70 answered within T, 10 abandoned within T, 20 answered after T: 70 %, 77.8 %, 80 %, 77.8 %."""
    records: list[dict[str, Any]] = []
    for i in range(100):
        cid = f"k{i}"
        records.append(call("offered", cid, "10:00:00"))
        if i < 70:
            records.append(call("answered", cid, "10:00:10"))
        elif i < 80:
            records.append(call("abandoned", cid, "10:00:10"))
        else:
            records.append(call("answered", cid, "10:00:30"))
    expected = {"negative": 0.70, "without_abandons": 70 / 90, "positive": 0.80, "answered_only": 70 / 90}
    queues = {f: {"sl_formula": f} for f in expected}
    eng = engine(config=config_from_dict({"queues": queues}))
    feed(eng, [{**r, "queue": q} for q in expected for r in records])
    got = {
        r["queue"]: r["service_level"]
        for r in frame(eng, "SELECT queue, service_level FROM kpi_queue_interval").to_dicts()
    }
    assert got == pytest.approx(expected)


def test_undefined_kpis_are_null_not_zero() -> None:
    eng = engine()
    feed(eng, [call("offered", "z1", "09:00:00")])  # one call, still waiting
    r = one(eng, "SELECT * FROM kpi_queue_interval")
    assert r["offered"] == 1 and r["waiting"] == 1
    for name in ("asa_s", "aht_s", "transfer_rate", "max_wait_s", "repeat_rate", "fcr"):
        assert r[name] is None, name
    assert r["service_level"] == 0.0  # defined: 0 of 1 offered answered within T
    assert r["abandon_rate"] == 0.0


def test_agent_interval_by_hand() -> None:
    eng = engine()
    feed(eng, SCENARIO)
    rows = {(r["agent_id"], r["interval_start"]): r for r in frame(eng, "SELECT * FROM kpi_agent_interval").to_dicts()}
    a1 = rows[("a1", utc("09:00:00"))]
    # ready 10 + 165 + 105 + 180, busy 180 + 120, wrap 20, not ready 120 = 900 s
    assert (a1["ready_s"], a1["busy_s"], a1["wrap_s"], a1["not_ready_s"]) == (460, 300, 20, 120)
    assert a1["handled"] == 2 and a1["aht_s"] == pytest.approx((200 + 120) / 2)
    assert a1["occupancy"] == pytest.approx(320 / 780)
    assert a1["qa_score"] == pytest.approx(85)
    before = rows[("a1", utc("08:45:00"))]
    assert before["ready_s"] == 295 and before["handled"] == 0 and before["aht_s"] is None
    after = rows[("a1", utc("09:15:00"))]
    assert after["ready_s"] == 300 and after["occupancy"] == 0
    a2 = rows[("a2", utc("09:00:00"))]  # no state events: handled calls but occupancy undefined
    assert a2["handled"] == 1 and a2["aht_s"] == 240 and a2["occupancy"] is None and a2["qa_score"] is None


def test_agent_states_view() -> None:
    eng = engine()
    feed(eng, SCENARIO)
    rows = frame(
        eng, "SELECT state, reason, duration_s, ended_at FROM agent_states WHERE agent_id = 'a1' ORDER BY started_at"
    ).to_dicts()
    assert [r["state"] for r in rows] == [
        "login",
        "ready",
        "busy",
        "wrap",
        "ready",
        "busy",
        "ready",
        "not_ready",
        "ready",
        "logout",
    ]
    assert rows[7]["reason"] == "break" and rows[7]["duration_s"] == 120
    assert rows[-1]["ended_at"] is None and rows[-1]["duration_s"] == 0  # open, as of the watermark


def test_cases_by_hand() -> None:
    eng = engine()
    feed(eng, SCENARIO)
    cases = {r["case_id"]: r for r in frame(eng, "SELECT * FROM cases").to_dicts()}
    k1, k2, k3 = cases["K1"], cases["K2"], cases["K3"]
    assert (k1["contacts"], k1["resolution_s"], k1["resolved_first_contact"]) == (2, 495, False)
    assert k1["first_offered_at"] == utc("09:00:00") and k1["resolved_at"] == utc("09:08:15")
    assert (k2["contacts"], k2["resolution_s"], k2["resolved_first_contact"]) == (1, 260, True)
    assert (k3["resolved_at"], k3["resolution_s"], k3["resolved_first_contact"]) == (None, None, None)
    res = {(r["queue"], r["category"]): r for r in frame(eng, "SELECT * FROM kpi_case_resolution").to_dicts()}
    dispute = res[("billing", "dispute")]
    assert (dispute["cases"], dispute["resolved"]) == (2, 2)
    assert dispute["median_resolution_s"] == pytest.approx((260 + 495) / 2)
    assert dispute["p90_resolution_s"] == pytest.approx(260 + 0.9 * (495 - 260))
    assert dispute["first_contact_resolution_rate"] == pytest.approx(0.5)
    assert res[("billing", "card")]["resolved"] == 0


def test_calls_view_columns_and_values() -> None:
    eng = engine()
    feed(eng, SCENARIO)
    calls = {r["call_id"]: r for r in frame(eng, "SELECT * FROM calls").to_dicts()}
    assert list(calls["c1"])[:19] == [
        "call_id",
        "queue",
        "caller_key",
        "agent_id",
        "offered_at",
        "answered_at",
        "abandoned_at",
        "exited_at",
        "ended_at",
        "outcome",
        "wait_s",
        "talk_s",
        "hold_s",
        "wrap_s",
        "handle_s",
        "transferred",
        "case_id",
        "category",
        "resolved",
    ]
    assert calls["c1"]["handle_s"] == 200 and calls["c7"]["handle_s"] == 120
    assert calls["c2"]["transferred"] is True and calls["c1"]["transferred"] is False
    assert calls["c8"]["outcome"] == "waiting" and calls["c8"]["wait_s"] is None
    assert calls["c1"]["caller_key"] == calls["c5"]["caller_key"] != calls["c2"]["caller_key"]
    assert X not in str(calls)  # never in the clear


def test_late_event_corrects_its_interval() -> None:
    eng = engine()
    feed(eng, SCENARIO)
    feed(eng, [{"type": "agent", "agent_id": "a9", "state": "login", "at": at("13:00:00")}])
    # c8, offered 09:14, is answered at 09:14:30 — the event arrives hours late.
    feed(eng, [call("answered", "c8", "09:14:30", agent_id="a2")])
    r = one(eng, "SELECT * FROM kpi_queue_interval WHERE queue = 'billing' AND interval_start = ?", [utc("09:00:00")])
    assert (r["answered"], r["waiting"]) == (4, 0)
    assert r["asa_s"] == pytest.approx((10 + 20 + 15 + 30) / 4)
    assert r["max_wait_s"] == 120


def test_orphan_rule_closes_a_call_waiting_too_long() -> None:
    eng = engine()
    feed(eng, SCENARIO)
    # The watermark moves past 09:14 + 4 h: c8 is closed as exited at 13:14:00.
    feed(eng, [{"type": "agent", "agent_id": "a9", "state": "login", "at": at("13:14:01")}])
    c8 = one(eng, "SELECT * FROM calls WHERE call_id = 'c8'")
    assert c8["outcome"] == "exited" and c8["exited_at"] == utc("13:14:00") and c8["wait_s"] == 4 * 3600
    r = one(eng, "SELECT * FROM kpi_queue_interval WHERE queue = 'billing' AND interval_start = ?", [utc("09:00:00")])
    assert (r["exited"], r["waiting"], r["max_wait_s"]) == (2, 0, 4 * 3600)


def test_centre_totals_count_a_call_once() -> None:
    eng = engine()
    feed(
        eng,
        [
            call("offered", "t1", "09:00:00"),
            call("answered", "t1", "09:00:05"),
            call("transferred", "t1", "09:02:00"),
            call("ended", "t1", "09:02:00", talk_s=115),
            {**call("offered", "t1", "09:02:00"), "queue": "sales"},
            {**call("abandoned", "t1", "09:02:30"), "queue": "sales"},
        ],
    )
    r = one(eng, "SELECT * FROM kpi_centre_interval")
    assert (r["offered"], r["answered"], r["abandoned"]) == (1, 1, 0)
    per_queue = frame(eng, "SELECT sum(offered) AS n FROM kpi_queue_interval").item()
    assert per_queue == 2


def test_hourly_and_daily_roll_up_in_site_time_zone() -> None:
    eng = engine(config=config_from_dict({"site": {"timezone": "Asia/Shanghai"}}))
    feed(eng, SCENARIO)
    daily = one(eng, "SELECT * FROM kpi_queue_daily WHERE queue = 'billing'")
    assert daily["interval_start"] == datetime(2026, 3, 2, tzinfo=TZ)  # local midnight
    assert daily["offered"] == 8 and daily["service_level"] == pytest.approx(2 / 7)
    hourly = one(eng, "SELECT * FROM kpi_queue_hourly WHERE queue = 'billing'")
    assert hourly["interval_start"] == utc("09:00:00") and hourly["interval_s"] == 3600


def test_a_five_minute_interval_by_hand() -> None:
    """`[pipeline] interval = "5m"`: the scenario's calls fall into three intervals by offer
    time; each interval's KPIs worked out by hand, and the hour still adds up to the whole."""
    eng = engine(config=config_from_dict({"site": {"timezone": "Asia/Shanghai"}, "pipeline": {"interval": "5m"}}))
    feed(eng, SCENARIO)
    rows = {
        r["interval_start"]: r
        for r in frame(
            eng, "SELECT * FROM kpi_queue_interval WHERE queue = 'billing' ORDER BY interval_start"
        ).to_dicts()
    }
    assert sorted(rows) == [utc("09:00:00"), utc("09:05:00"), utc("09:10:00")]
    first, second, third = (rows[utc(t)] for t in ("09:00:00", "09:05:00", "09:10:00"))
    assert {r["interval_s"] for r in rows.values()} == {300}
    # 09:00-09:05: c1 (answered after 10 s), c2 (answered after 20 s), c3 (abandoned after 3 s: short),
    # c4 (abandoned after 12 s), c5 (abandoned after 40 s).
    assert (first["offered"], first["answered"], first["abandoned"], first["short_abandoned"]) == (5, 2, 3, 1)
    assert first["service_level"] == pytest.approx(1 / (5 - 1))
    assert first["abandon_rate"] == pytest.approx((3 - 1) / (5 - 1))
    assert first["asa_s"] == pytest.approx((10 + 20) / 2)
    # 09:05-09:10: c6 (exited after 120 s), c7 (answered after 15 s: within the threshold).
    assert (second["offered"], second["answered"], second["exited"]) == (2, 1, 1)
    assert second["service_level"] == pytest.approx(1 / 2)
    assert second["asa_s"] == pytest.approx(15)
    # 09:10-09:15: c8, still waiting at the watermark.
    assert (third["offered"], third["waiting"]) == (1, 1)
    hourly = one(eng, "SELECT * FROM kpi_queue_hourly WHERE queue = 'billing'")
    assert hourly["offered"] == 8 and hourly["service_level"] == pytest.approx(2 / 7)
