"""Quality counters and histograms: counted once per quality report, in the first queue of
its call, by the batch that stores the later of the report and the call's offer; exported as
counters and histograms (so PromQL sums them across workers), with the queue's target."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from metrics.export import names
from metrics.export.collector import ExportState, KpiCollector
from metrics.export.exporter import _quality_totals
from metrics.kpi.snapshot import take_snapshot
from pipeline.core import counters as quality_counters
from pipeline.core.config import config_from_dict
from tests.helpers import engine, feed, frame
from tests.support.scrape import samples, value

AT = "2026-03-02T09:{:02d}:00Z"


def offered(cid: str, minute: int, queue: str = "billing") -> dict[str, Any]:
    return {"type": "call", "event": "offered", "call_id": cid, "queue": queue, "at": AT.format(minute)}


def q(cid: str, leg: str, direction: str, minute: int, **measures: Any) -> dict[str, Any]:
    return {"type": "quality", "call_id": cid, "leg": leg, "direction": direction, "at": AT.format(minute), **measures}


CONFIG = config_from_dict({"queues": {"vip": {"quality": {"poor_mos": 4.0}, "targets": {"poor_quality_ratio": 0.05}}}})


def counters(eng: Any) -> dict[str, tuple[int, ...]]:
    rows = frame(eng, "SELECT queue, reports, poor, mos_count, jitter_count FROM quality_counters ORDER BY queue")
    return {r[0]: tuple(r[1:]) for r in rows.rows()}


def test_counted_once_when_both_report_and_offer_are_stored() -> None:
    eng = engine(config=CONFIG)
    # b1 in billing: in 3.2 MOS (poor), out 4.4 / 40 ms jitter (poor); v1 in vip: 3.9 (poor there only)
    feed(eng, [offered("b1", 0), q("b1", "caller", "in", 5, mos=3.2, jitter_ms=12), offered("v1", 1, "vip")])
    feed(eng, [q("b1", "caller", "out", 6, mos=4.4, jitter_ms=40), q("v1", "caller", "in", 6, mos=3.9)])
    # x1: its report before its call; counted when the offer arrives, not before
    feed(eng, [q("x1", "agent", "in", 7, mos=4.2, loss_pct=0.5)])
    assert "sales" not in counters(eng)
    before = counters(eng)
    feed(eng, [offered("x1", 2, "sales")])
    # the same records again change nothing, nor does a later event of a counted call
    feed(eng, [q("b1", "caller", "in", 5, mos=3.2, jitter_ms=12), offered("x1", 2, "sales")])
    feed(eng, [{"type": "call", "event": "answered", "call_id": "b1", "queue": "billing", "at": AT.format(3)}])
    # reports, poor, with MOS, with jitter
    assert before == {"billing": (2, 2, 2, 2), "vip": (1, 1, 1, 0)}
    assert counters(eng) == {"billing": (2, 2, 2, 2), "vip": (1, 1, 1, 0), "sales": (1, 0, 1, 0)}
    sums = frame(eng, "SELECT mos_sum, jitter_sum_s FROM quality_counters WHERE queue = 'billing'").rows()
    assert sums[0] == (pytest.approx(3.2 + 4.4), pytest.approx(0.012 + 0.040))
    buckets = frame(eng, "SELECT measure, le, reports FROM quality_buckets WHERE queue = 'billing' ORDER BY 1, 2")
    # MOS 3.2 is within le 3.5 and up, 4.4 within 4.5 only; jitter 12 ms within 0.02 and up, 40 ms within 0.05 and up
    assert buckets.rows() == [
        ("jitter_s", 0.02, 1), ("jitter_s", 0.03, 1), ("jitter_s", 0.05, 2), ("jitter_s", 0.1, 2), ("jitter_s", 0.2, 2),
        ("mos", 3.5, 1), ("mos", 4.0, 1), ("mos", 4.3, 1), ("mos", 4.5, 2),
    ]  # fmt: skip


def test_a_report_waiting_for_its_call_is_counted_after_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "cp.duckdb"
    eng = engine(db, CONFIG)
    feed(eng, [offered("b1", 0), q("x1", "agent", "in", 7, mos=3.0)])  # x1's call not known yet
    eng.close()
    eng = engine(db, CONFIG)  # a new process: what waits is read from the database
    feed(eng, [offered("x1", 2, "sales")])
    assert counters(eng) == {"sales": (1, 1, 1, 0)}
    eng.close()


def test_a_batch_without_quality_skips_the_quality_counters(monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[int] = []
    real = quality_counters.add_quality
    monkeypatch.setattr(quality_counters, "add_quality", lambda con: (ran.append(1), real(con))[1])
    eng = engine(config=CONFIG)
    feed(eng, [offered("b1", 0)])  # nothing waits, no quality: skipped
    feed(eng, [q("x1", "agent", "in", 7, mos=3.0)])  # quality: counted (or kept waiting)
    feed(eng, [offered("b2", 1)])  # x1 waits: every batch with calls looks for it
    feed(eng, [offered("x1", 2, "sales")])  # found: counted, nothing waits any more
    feed(eng, [offered("b3", 3)])  # skipped again
    assert ran == [1, 1, 1]
    assert counters(eng) == {"sales": (1, 1, 1, 0)}


def test_exported_as_counters_histograms_and_target() -> None:
    eng = engine(config=CONFIG)
    feed(
        eng,
        [
            offered("b1", 0), offered("b2", 1), offered("v1", 1, "vip"),
            q("b1", "caller", "in", 5, mos=3.2, jitter_ms=12), q("b1", "caller", "out", 5, mos=4.4, jitter_ms=40),
            q("b2", "caller", "in", 6, mos=4.1, jitter_ms=4, loss_pct=0.2),
        ],
    )  # fmt: skip
    con = eng.store.con
    st = ExportState(snapshot=take_snapshot(con, CONFIG.windows), quality=_quality_totals(con))
    registry = CollectorRegistry()
    registry.register(KpiCollector(lambda: st, clock=lambda: datetime(2026, 3, 2, 9, 10, tzinfo=UTC)))
    text = generate_latest(registry).decode()
    assert value(text, names.QUALITY_REPORTS_TOTAL.name, queue="billing") == 3
    assert value(text, names.QUALITY_POOR_REPORTS_TOTAL.name, queue="billing") == 2
    assert value(text, names.QUALITY_REPORTS_TOTAL.name, queue="vip") == 0  # known queue, no reports: 0
    assert value(text, names.TARGET_POOR_QUALITY.name, queue="billing") == 0.10
    assert value(text, names.TARGET_POOR_QUALITY.name, queue="vip") == 0.05
    mos = samples(text, names.QUALITY_MOS.name + "_bucket")
    by_le = {dict(k)["le"]: v for k, v in mos.items() if dict(k)["queue"] == "billing"}
    # MOS 3.2, 4.4, 4.1: le 3.0 none; 3.5 one; 4.3 two; 4.5 and +Inf all three
    assert (by_le["3.0"], by_le["3.5"], by_le["4.3"], by_le["4.5"], by_le["+Inf"]) == (0, 1, 2, 3, 3)
    assert value(text, names.QUALITY_MOS.name + "_sum", queue="billing") == pytest.approx(3.2 + 4.4 + 4.1)
    assert value(text, names.QUALITY_JITTER.name + "_count", queue="billing") == 3
    jitter = {dict(k)["le"]: v for k, v in samples(text, names.QUALITY_JITTER.name + "_bucket").items()
              if dict(k)["queue"] == "billing"}  # fmt: skip
    assert (jitter["0.005"], jitter["0.02"], jitter["0.03"], jitter["0.05"]) == (1, 2, 2, 3)
