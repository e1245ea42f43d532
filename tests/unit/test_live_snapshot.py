"""The snapshot the publisher takes after every batch leaves out the current interval's
KPIs (no live reader shows them); the rest is the full snapshot's, which `callpulse kpis`
shows with them."""

from __future__ import annotations

from dataclasses import replace

from metrics.kpi.snapshot import take_snapshot
from pipeline.core.config import Config
from tests.helpers import engine, feed, offered


def test_the_live_snapshot_is_the_full_one_without_the_current_interval() -> None:
    eng = engine()
    try:
        # 09:00-09:14 is one 15-minute interval, 09:16 opens the next (the watermark's)
        feed(eng, [offered("c1", 0), offered("c2", 10), offered("c3", 16), offered("c4", 17, queue="sales")])
        full = take_snapshot(eng.store.con, Config().windows)
        live = take_snapshot(eng.store.con, Config().windows, current_interval=False)
    finally:
        eng.close()
    assert full.queues["billing"].interval is not None and full.queues["billing"].interval.offered == 1
    assert full.queues["sales"].interval is not None and full.queues["sales"].interval.offered == 1
    assert full.queues["billing"].windows["1h"].offered == 3  # the rolling windows are there in both
    assert live.queues.keys() == full.queues.keys()
    for name, q in live.queues.items():
        assert q.interval is None
        assert q == replace(full.queues[name], interval=None)
    assert live.to_json()["queues"]["billing"]["interval"] is None


def test_the_calls_waiting_now_are_the_calls_views_waiting_ones() -> None:
    """kpi/queue_live reads call_state, not the calls view (the publisher runs it after every
    batch); what it counts as waiting must stay the view's outcome 'waiting'."""
    from pipeline.core import sqlfiles

    def event(kind: str, call_id: str, at: str, queue: str = "billing", **more: object) -> dict[str, object]:
        return {"type": "call", "event": kind, "call_id": call_id, "queue": queue, "at": f"2026-03-02T{at}Z", **more}

    eng = engine()
    try:
        feed(
            eng,
            [
                event("offered", "old", "05:00:00"),  # waiting past orphan_after (4 h): closed, not waiting
                event("offered", "w1", "09:30:00"),
                event("offered", "w2", "09:58:30"),
                event("offered", "w3", "09:59:00", queue="sales"),
                event("offered", "ans", "09:40:00"),
                event("answered", "ans", "09:40:20", agent_id="a1"),
                event("offered", "ab", "09:41:00"),
                event("abandoned", "ab", "09:41:30"),
                event("offered", "ex", "09:42:00"),
                event("exited", "ex", "09:43:00"),
                event("answered", "no-offer", "09:44:00", agent_id="a2"),  # its offer not stored yet
                event("offered", "late", "09:59:30", queue="sales"),
            ],
        )
        got = [tuple(r) for r in sqlfiles.rows(eng.store.con, "kpi/queue_live")]
        want = [
            tuple(r)
            for r in eng.store.con.execute(
                """SELECT s.queue, count(c.call_id),
                          max(date_diff('microsecond', c.offered_at, p.watermark)) / 1e6
                   FROM queue_settings s CROSS JOIN pipeline_state p
                   LEFT JOIN calls c ON c.queue = s.queue AND c.outcome = 'waiting'
                   GROUP BY s.queue ORDER BY s.queue"""
            ).fetchall()
        ]
    finally:
        eng.close()
    assert got == want
    assert got == [("billing", 2, 1770.0), ("sales", 2, 30.0)]  # w1 and w2; w3 and late
