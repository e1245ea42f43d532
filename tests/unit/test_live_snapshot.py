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
