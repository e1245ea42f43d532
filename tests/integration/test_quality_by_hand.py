"""Call-quality KPIs (views call_quality, kpi_quality_interval) against numbers worked out by hand.

The scenario (UTC, interval 15 min). Quality per call is its worst leg and direction:
lowest MOS, highest jitter, loss and RTT. Poor (defaults): MOS < 3.5, loss > 1 %,
jitter > 30 ms.

  call queue   offered  records (leg/dir: mos jitter loss rtt)         per call               poor
  q1   billing 09:00    a/in 4.2 10 0.5 40; a/out 3.9 20 0.0 60        3.9  20  0.5  60       no
  q2   billing 09:02    a/in 3.2 35 2.5 120                             3.2  35  2.5  120      mos, net
  q3   billing 09:04    a/in 3.6 5 1.5 -                                3.6   5  1.5  -       net (loss)
  q4   billing 09:06    a/in MES 80, jitter 31                          -    31   -   -       net (jitter)
  q5   billing 09:08    abandoned, no quality                           (not counted)
  q6   billing 09:10    a/in 4.4 only                                   4.4   -   -   -       no
  q7   billing 09:14    a/in 2.0 50 5 - arriving at 09:25, a later batch  2.0 50  5   -       mos, net
  q8   billing 09:16    a/in 4.0 8 0 -                                  next interval         no

billing 09:00: calls with quality 6 (q1 q2 q3 q4 q6 q7); MOS on 5 calls, mean 17.1 / 5 = 3.42;
poor MOS q2 q7 = 2 / 5; jitter [5, 20, 31, 35, 50], p95 = 35 + 0.8 * (50 - 35) = 47;
loss (0.5 + 2.5 + 1.5 + 5) / 4 = 2.375; rtt (60 + 120) / 2 = 90; loss or jitter known on 5
calls, poor network q2 q3 q4 q7 = 4 / 5; poor calls q2 q3 q4 q7 = 4 / 6.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from pipeline.core.config import config_from_dict
from tests.helpers import engine, feed, frame, one


def at(hms: str) -> str:
    return f"2026-03-02T{hms}Z"


def utc(hms: str) -> datetime:
    h, m, s = map(int, hms.split(":"))
    return datetime(2026, 3, 2, h, m, s, tzinfo=UTC)


def answered(cid: str, hms: str, queue: str = "billing", agent: str = "a1") -> list[dict[str, Any]]:
    h, m, s = hms.split(":")
    return [
        {"type": "call", "event": "offered", "call_id": cid, "queue": queue, "at": at(hms)},
        {"type": "call", "event": "answered", "call_id": cid, "queue": queue, "at": at(f"{h}:{m}:{int(s) + 5:02d}"),
         "agent_id": agent},
    ]  # fmt: skip


def q(cid: str, leg: str, direction: str, hms: str, **measures: Any) -> dict[str, Any]:
    return {"type": "quality", "call_id": cid, "leg": leg, "direction": direction, "at": at(hms), **measures}


CALLS = [
    *answered("q1", "09:00:00"),
    *answered("q2", "09:02:00", agent="a2"),
    *answered("q3", "09:04:00"),
    *answered("q4", "09:06:00"),
    {"type": "call", "event": "offered", "call_id": "q5", "queue": "billing", "at": at("09:08:00")},
    {"type": "call", "event": "abandoned", "call_id": "q5", "queue": "billing", "at": at("09:08:30")},
    *answered("q6", "09:10:00"),
    *answered("q7", "09:14:00"),
    *answered("q8", "09:16:00"),
]
QUALITY = [
    q("q1", "a", "in", "09:03:00", mos=4.2, jitter_ms=10, loss_pct=0.5, rtt_ms=40),
    q("q1", "a", "out", "09:03:00", mos=3.9, jitter_ms=20, loss_pct=0.0, rtt_ms=60),
    q("q2", "a", "in", "09:05:00", mos=3.2, jitter_ms=35, loss_pct=2.5, rtt_ms=120),
    q("q3", "a", "in", "09:07:00", mos=3.6, jitter_ms=5, loss_pct=1.5),
    q("q4", "a", "in", "09:09:00", vendor_score=80, vendor_score_kind="asterisk_mes", jitter_ms=31),
    q("q6", "a", "in", "09:12:00", mos=4.4),
    q("q8", "a", "in", "09:20:00", mos=4.0, jitter_ms=8, loss_pct=0),
]
LATE = [q("q7", "a", "in", "09:25:00", mos=2.0, jitter_ms=50, loss_pct=5)]


def interval(eng: Any, queue: str, hms: str) -> dict[str, Any]:
    return one(eng, "SELECT * FROM kpi_quality_interval WHERE queue = ? AND interval_start = ?", [queue, utc(hms)])


@pytest.fixture
def eng() -> Any:
    e = engine()
    feed(e, CALLS + QUALITY)
    feed(e, LATE)
    return e


def test_call_quality_is_the_worst_leg_in_the_call_s_queue_and_interval(eng: Any) -> None:
    r = one(eng, "SELECT * FROM call_quality WHERE call_id = 'q1'")
    assert (r["queue"], r["agent_id"], r["offered_at"], r["interval_start"]) == (
        "billing", "a1", utc("09:00:00"), utc("09:00:00")
    )  # fmt: skip
    assert (r["reports"], r["mos"], r["jitter_ms"], r["loss_pct"], r["rtt_ms"]) == (2, 3.9, 20, 0.5, 60)
    assert (r["poor_mos"], r["poor_network"], r["poor"]) == (False, False, False)
    r4 = one(eng, "SELECT * FROM call_quality WHERE call_id = 'q4'")
    assert (r4["mos"], r4["vendor_score"], r4["vendor_score_kind"]) == (None, 80, "asterisk_mes")
    assert (r4["poor_mos"], r4["poor_network"], r4["poor"]) == (None, True, True)
    r6 = one(eng, "SELECT * FROM call_quality WHERE call_id = 'q6'")
    assert (r6["poor_mos"], r6["poor_network"], r6["poor"]) == (False, None, False)
    calls = frame(eng, "SELECT call_id FROM call_quality ORDER BY call_id").get_column("call_id").to_list()
    assert calls == ["q1", "q2", "q3", "q4", "q6", "q7", "q8"]


def test_kpi_quality_interval_by_hand(eng: Any) -> None:
    r = interval(eng, "billing", "09:00:00")
    assert r["interval_s"] == 900
    assert (r["calls"], r["mos_calls"], r["poor_mos_calls"]) == (6, 5, 2)
    assert r["mos_mean"] == pytest.approx(17.1 / 5)
    assert r["poor_mos_ratio"] == pytest.approx(2 / 5)
    assert r["jitter_p95_ms"] == pytest.approx(47.0)
    assert r["loss_mean_pct"] == pytest.approx(9.5 / 4)
    assert r["rtt_mean_ms"] == pytest.approx(90.0)
    assert (r["network_calls"], r["poor_network_calls"]) == (5, 4)
    assert r["poor_network_ratio"] == pytest.approx(4 / 5)
    assert r["poor_calls"] == 4
    assert r["poor_quality_ratio"] == pytest.approx(4 / 6)
    nxt = interval(eng, "billing", "09:15:00")
    assert (nxt["calls"], nxt["mos_mean"], nxt["poor_quality_ratio"]) == (1, 4.0, 0.0)
    assert nxt["rtt_mean_ms"] is None  # no RTT known: NULL, never 0


def test_late_quality_updates_the_interval_the_call_was_offered_in() -> None:
    e = engine()
    feed(e, CALLS + QUALITY)
    before = interval(e, "billing", "09:00:00")
    # Without q7: MOS 3.9 3.2 3.6 4.4; poor q2 q3 q4 of 5 calls.
    assert (before["calls"], before["poor_calls"]) == (5, 3)
    assert before["mos_mean"] == pytest.approx(15.1 / 4)
    feed(e, LATE)
    after = interval(e, "billing", "09:00:00")
    assert (after["calls"], after["poor_calls"]) == (6, 4)
    assert after["mos_mean"] == pytest.approx(17.1 / 5)
    assert interval(e, "billing", "09:15:00")["calls"] == 1  # not the interval of the record's own time


def test_quality_before_its_call_counts_once_the_call_arrives() -> None:
    e = engine()
    feed(e, [q("x1", "a", "in", "09:01:00", mos=3.0)])
    assert frame(e, "SELECT count(*) FROM call_quality").item() == 0
    assert frame(e, "SELECT count(*) FROM quality_reports").item() == 1
    feed(e, answered("x1", "09:00:00"))
    r = interval(e, "billing", "09:00:00")
    assert (r["calls"], r["poor_mos_calls"]) == (1, 1)


def test_thresholds_are_strict_and_per_queue() -> None:
    """At the thresholds a call is not poor; a queue's own thresholds apply to its calls."""
    cfg = config_from_dict(
        {"queues": {"vip": {"quality": {"poor_mos": 4.0, "poor_jitter_ms": 10, "poor_loss_pct": 0.5}}}}
    )
    e = engine(config=cfg)
    feed(
        e,
        [
            *answered("b1", "09:00:00"),
            *answered("v1", "09:00:00", queue="vip"),
            *answered("v2", "09:01:00", queue="vip"),
            q("b1", "a", "in", "09:05:00", mos=3.5, jitter_ms=30, loss_pct=1.0),
            q("v1", "a", "in", "09:05:00", mos=3.9, jitter_ms=9, loss_pct=0.4),
            q("v2", "a", "in", "09:05:00", mos=4.0, jitter_ms=10.5, loss_pct=0.5),
        ],
    )
    b = interval(e, "billing", "09:00:00")
    assert (b["poor_mos_calls"], b["poor_network_calls"], b["poor_calls"]) == (0, 0, 0)
    v = interval(e, "vip", "09:00:00")
    # v1: MOS 3.9 < 4.0 poor; v2: jitter 10.5 > 10 poor network.
    assert (v["poor_mos_calls"], v["poor_network_calls"], v["poor_calls"], v["calls"]) == (1, 1, 2, 2)


def test_a_call_in_several_queues_counts_once_in_its_first_queue() -> None:
    e = engine()
    feed(
        e,
        [
            *answered("t1", "09:00:00"),
            {"type": "call", "event": "transferred", "call_id": "t1", "queue": "billing", "at": at("09:03:00"),
             "agent_id": "a1"},
            *answered("t1", "09:03:00", queue="cards", agent="a9"),
            q("t1", "a", "in", "09:06:00", mos=3.0),
        ],
    )  # fmt: skip
    rows = frame(e, "SELECT queue, agent_id FROM call_quality").rows()
    assert rows == [("billing", "a1")]
    assert frame(e, "SELECT queue, calls FROM kpi_quality_interval").rows() == [("billing", 1)]


def test_batching_never_changes_the_quality_kpis() -> None:
    whole = engine()
    feed(whole, CALLS + QUALITY + LATE)
    one_by_one = engine()
    for record in reversed(CALLS + QUALITY + LATE):
        feed(one_by_one, [record])
    sql = "SELECT * FROM kpi_quality_interval ORDER BY queue, interval_start"
    assert frame(whole, sql).to_dicts() == frame(one_by_one, sql).to_dicts()


BREACH_CONFIG = {
    "pipeline": {"windows": ["15m"]},
    "defaults": {"min_calls": 2},
    "exporter": {"breach_hold": "0s"},
}
# c1 good, c2 poor (quality stamped 09:03:30); c3 poor, its quality stamped 09:06:30 and stored
# in a later batch, after the minutes it changes were decided; c9 moves the watermark to 09:20.
BREACH_CALLS = [*answered("c1", "09:00:30"), *answered("c2", "09:01:30"), *answered("c3", "09:02:30")]
BREACH_EARLY = [
    q("c1", "a", "in", "09:03:30", mos=4.2),
    q("c2", "a", "in", "09:03:30", mos=3.0),
    {"type": "call", "event": "offered", "call_id": "c9", "queue": "billing", "at": at("09:20:00")},
]
BREACH_LATE = [q("c3", "a", "in", "09:06:30", loss_pct=4.0)]
BREACH_SQL = (
    'SELECT queue, kpi, "window", target, value, worst_value, opened_at, closed_at FROM breaches '
    "WHERE kpi = 'poor_quality'"
)


def _detected(batches: list[list[dict[str, Any]]]) -> list[tuple[Any, ...]]:
    from metrics.kpi.breaches import BreachDetector

    cfg = config_from_dict(BREACH_CONFIG)
    e = engine(config=cfg)
    detector = BreachDetector(e.store.con, cfg.windows, cfg.exporter.breach_hold_s)
    for b in batches:
        feed(e, b)
        detector.run(e.store.con)
    return frame(e, BREACH_SQL).rows()


def test_poor_quality_breach_by_hand_and_late_quality_redecides_it() -> None:
    """Window 15m, min_calls 2, hold 0. As of m a call counts with the quality stamped by m:
    09:04-09:06 c1, c2: 1/2 poor (opens at 09:04, 0.5 > 0.10); 09:07-09:15 with c3: 2/3;
    09:16 c1 out of the window: c2, c3: 2/2 (worst 1.0); 09:17 c3 alone, under min_calls:
    closes at 09:17. Without c3's late record it would have closed at 09:16 (c2 alone)."""
    early = _detected([BREACH_CALLS + BREACH_EARLY])
    assert early == [("billing", "poor_quality", "15m", 0.10, 0.5, 0.5, utc("09:04:00"), utc("09:16:00"))]
    expected = [("billing", "poor_quality", "15m", 0.10, 0.5, 1.0, utc("09:04:00"), utc("09:17:00"))]
    assert _detected([BREACH_CALLS + BREACH_EARLY, BREACH_LATE]) == expected
    assert _detected([BREACH_CALLS + BREACH_EARLY + BREACH_LATE]) == expected


def test_report_quality_by_hand(eng: Any) -> None:
    """`callpulse report quality` (polars over call_quality rows) for 09:00-09:15: the by-hand
    numbers of the module docstring, and nothing of 09:15's q8."""
    from pipeline.cli.analyst import build

    rows = build(eng.store.con, "quality", utc("09:00:00"), utc("09:15:00"), None, "UTC").to_dicts()
    assert len(rows) == 1
    r = rows[0]
    assert (r["queue"], r["trunk"], r["calls"], r["poor_calls"]) == ("billing", None, 6, 4)
    assert r["mos_mean"] == pytest.approx(17.1 / 5)
    assert r["poor_mos_ratio"] == pytest.approx(2 / 5)
    assert r["jitter_p95_ms"] == pytest.approx(47.0)
    assert r["loss_mean_pct"] == pytest.approx(9.5 / 4)
    assert r["poor_network_ratio"] == pytest.approx(4 / 5)
    assert r["poor_quality_ratio"] == pytest.approx(4 / 6)


def test_report_quality_by_trunk() -> None:
    from pipeline.cli.analyst import build

    e = engine()
    feed(
        e,
        [
            *answered("t1", "09:00:00"), *answered("t2", "09:01:00"), *answered("t3", "09:02:00"),
            q("t1", "a", "in", "09:05:00", mos=3.0, trunk="carrier-a"),
            q("t2", "a", "in", "09:05:00", mos=4.0, trunk="carrier-a"),
            q("t3", "a", "in", "09:05:00", mos=4.4, trunk="carrier-b"),
        ],
    )  # fmt: skip
    rows = build(e.store.con, "quality", utc("09:00:00"), utc("10:00:00"), "billing", "UTC")
    got = rows.select("trunk", "calls", "mos_mean", "poor_quality_ratio").rows()
    assert got == [("carrier-a", 2, pytest.approx(3.5), 0.5), ("carrier-b", 1, 4.4, 0.0)]


# Per agent (UTC, interval 15 min). A call counts for the agent who answered it in its first
# queue; a call no agent answered counts for no agent.
#   call queue    offered agent            quality (mos jitter loss rtt)   poor
#   g1   billing  09:00   a1               4.0 10 0.5 50                   no
#   g2   billing  09:01   a2               3.0 40 2.0 -                    mos, net
#   g3   cards    09:02   a1               3.4 20 -   -                    mos
#   g4   billing  09:03   (abandoned)      2.5 -  -   -                    (no agent: left out)
#   g5   billing  09:04   a1, then cards a9 4.4 - 1.5 -                    net (loss): a1's, not a9's
#   g6   billing  09:20   a2               4.2 5  -   -                    no (a2, 09:15)
# a1 09:00: calls g1 g3 g5 = 3; MOS (4.0 + 3.4 + 4.4) / 3 = 11.8 / 3; poor MOS g3 = 1 / 3;
# jitter [10, 20], p95 = 10 + 0.95 * 10 = 19.5; loss (0.5 + 1.5) / 2 = 1.0; rtt 50; loss or
# jitter known on g1 g3 g5 = 3, poor network g5 = 1 / 3; poor g3 g5 = 2 / 3.
# a2 09:00: g2 alone: MOS 3.0, poor MOS 1 / 1, jitter p95 40, loss 2.0, no rtt, poor 1 / 1.
AGENT_CALLS = [
    *answered("g1", "09:00:00"),
    *answered("g2", "09:01:00", agent="a2"),
    *answered("g3", "09:02:00", queue="cards"),
    {"type": "call", "event": "offered", "call_id": "g4", "queue": "billing", "at": at("09:03:00")},
    {"type": "call", "event": "abandoned", "call_id": "g4", "queue": "billing", "at": at("09:03:20")},
    *answered("g5", "09:04:00"),
    {"type": "call", "event": "transferred", "call_id": "g5", "queue": "billing", "at": at("09:05:00"),
     "agent_id": "a1"},
    *answered("g5", "09:06:00", queue="cards", agent="a9"),
    *answered("g6", "09:20:00", agent="a2"),
]  # fmt: skip
AGENT_QUALITY = [
    q("g1", "a", "in", "09:03:00", mos=4.0, jitter_ms=10, loss_pct=0.5, rtt_ms=50),
    q("g2", "a", "in", "09:04:00", mos=3.0, jitter_ms=40, loss_pct=2.0),
    q("g3", "a", "in", "09:05:00", mos=3.4, jitter_ms=20),
    q("g4", "ivr", "in", "09:03:20", mos=2.5),
    q("g5", "a", "in", "09:09:00", mos=4.4, loss_pct=1.5),
    q("g6", "a", "in", "09:24:00", mos=4.2, jitter_ms=5),
]


@pytest.fixture
def agents_eng() -> Any:
    e = engine()
    feed(e, AGENT_CALLS + AGENT_QUALITY)
    return e


def agent_interval(eng: Any, agent: str, hms: str) -> dict[str, Any]:
    sql = "SELECT * FROM kpi_quality_agent_interval WHERE agent_id = ? AND interval_start = ?"
    return one(eng, sql, [agent, utc(hms)])


def test_kpi_quality_agent_interval_by_hand(agents_eng: Any) -> None:
    a1 = agent_interval(agents_eng, "a1", "09:00:00")
    assert a1["interval_s"] == 900
    assert (a1["calls"], a1["mos_calls"], a1["poor_mos_calls"]) == (3, 3, 1)
    assert a1["mos_mean"] == pytest.approx(11.8 / 3)
    assert a1["poor_mos_ratio"] == pytest.approx(1 / 3)
    assert a1["jitter_p95_ms"] == pytest.approx(19.5)
    assert a1["loss_mean_pct"] == pytest.approx(1.0)
    assert a1["rtt_mean_ms"] == pytest.approx(50.0)
    assert (a1["network_calls"], a1["poor_network_calls"], a1["poor_calls"]) == (3, 1, 2)
    assert a1["poor_network_ratio"] == pytest.approx(1 / 3)
    assert a1["poor_quality_ratio"] == pytest.approx(2 / 3)
    a2 = agent_interval(agents_eng, "a2", "09:00:00")
    assert (a2["calls"], a2["mos_mean"], a2["poor_mos_ratio"], a2["jitter_p95_ms"]) == (1, 3.0, 1.0, 40.0)
    assert (a2["loss_mean_pct"], a2["rtt_mean_ms"], a2["poor_quality_ratio"]) == (2.0, None, 1.0)
    later = agent_interval(agents_eng, "a2", "09:15:00")
    assert (later["calls"], later["mos_mean"], later["poor_quality_ratio"]) == (1, 4.2, 0.0)
    rows = frame(agents_eng, "SELECT agent_id, interval_start, calls FROM kpi_quality_agent_interval ORDER BY ALL")
    # g4 (no agent) is nowhere; a9 answered g5 only after its first queue
    assert rows.rows() == [("a1", utc("09:00:00"), 3), ("a2", utc("09:00:00"), 1), ("a2", utc("09:15:00"), 1)]
    # the queue view over the same rows still counts g4: billing g1 g2 g4 g5, cards g3
    queues = frame(agents_eng, "SELECT queue, calls FROM kpi_quality_interval WHERE interval_start = ? ORDER BY 1",
                   [utc("09:00:00")])  # fmt: skip
    assert queues.rows() == [("billing", 4), ("cards", 1)]


def test_rolling_windows_per_queue_and_per_agent(agents_eng: Any) -> None:
    """quality_kpis_by(lo, hi, NULL, per) is a rolling window [lo, hi): one row per key,
    interval_start = lo. [09:02, 09:25) per agent: a1 g3 g5 (MOS (3.4 + 4.4) / 2, both
    poor), a2 g6; per queue (quality_kpis): billing g4 g5 g6, cards g3."""
    lo, hi = utc("09:02:00"), utc("09:25:00")
    sql = "SELECT key, interval_start, calls, mos_mean, poor_calls FROM quality_kpis_by(?, ?, NULL, ?) ORDER BY key"
    got = frame(agents_eng, sql, [lo, hi, "agent"]).rows()
    assert got == [("a1", lo, 2, pytest.approx(3.9), 2), ("a2", lo, 1, 4.2, 0)]
    queues = frame(agents_eng, "SELECT queue, calls, poor_calls FROM quality_kpis(?, ?, NULL) ORDER BY queue", [lo, hi])
    # billing: g4 MOS 2.5 poor, g5 loss 1.5 poor, g6 fine; cards: g3 MOS 3.4 poor
    assert queues.rows() == [("billing", 3, 2), ("cards", 1, 1)]


def test_report_quality_agents_by_hand(agents_eng: Any) -> None:
    """`callpulse report quality-agents` (polars over call_quality rows) for 09:00-09:15."""
    from pipeline.cli.analyst import build

    rows = build(agents_eng.store.con, "quality-agents", utc("09:00:00"), utc("09:15:00"), None, "UTC").to_dicts()
    assert [r["agent_id"] for r in rows] == ["a1", "a2"]
    a1, a2 = rows
    assert (a1["calls"], a1["poor_calls"]) == (3, 2)
    assert a1["mos_mean"] == pytest.approx(11.8 / 3)
    assert a1["poor_mos_ratio"] == pytest.approx(1 / 3)
    assert a1["jitter_p95_ms"] == pytest.approx(19.5)
    assert a1["loss_mean_pct"] == pytest.approx(1.0)
    assert a1["poor_network_ratio"] == pytest.approx(1 / 3)
    assert a1["poor_quality_ratio"] == pytest.approx(2 / 3)
    assert (a2["calls"], a2["mos_mean"], a2["poor_quality_ratio"]) == (1, 3.0, 1.0)
    only_cards = build(agents_eng.store.con, "quality-agents", utc("09:00:00"), utc("09:15:00"), "cards", "UTC")
    assert only_cards.select("agent_id", "calls").rows() == [("a1", 1)]
