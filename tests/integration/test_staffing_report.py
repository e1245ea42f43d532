"""`callpulse report interval` puts the agents needed beside the agents staffed, on the
hand-worked scenario of tests/unit/test_staffing_snapshot.py (UTC, 15-minute intervals).

Interval 09:00-09:15, watermark 09:14: offered 13, one short abandon, so 12 calls in 900 s;
AHT 180 s; one abandon in 200 s of waiting (patience 200 s): Erlang A. Staffed: a1, a2, a3
logged in all 840 s up to the watermark, a4 until its logout at 09:05 (300 s), so
(3·840 + 300) / 840 agents on average. sales: 3 calls, no number, and no agent of its own.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from metrics.kpi.staffing import agents_needed_erlang_a
from pipeline.cli.analyst import build, html_report
from tests.helpers import engine, feed
from tests.unit.test_staffing_snapshot import scenario


def test_interval_report_shows_agents_needed_beside_staffed() -> None:
    eng = engine()
    feed(eng, scenario())
    lo, hi = datetime(2026, 3, 2, tzinfo=UTC), datetime(2026, 3, 3, tzinfo=UTC)
    report = build(eng.store.con, "interval", lo, hi, None, "UTC")
    only_billing = build(eng.store.con, "interval", lo, hi, "billing", "UTC")
    page = html_report(eng.store.con, "interval", only_billing, lo, hi, "billing", "UTC", "")
    eng.close()

    rows = {r["queue"]: r for r in report.iter_rows(named=True)}
    billing = rows["billing"]
    assert billing["interval_start"] == datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    expected = agents_needed_erlang_a(12, interval_s=900, aht_s=180, patience_s=200, target_s=15, sl_target=0.8)
    assert expected is not None
    assert (billing["agents_needed"], billing["needed_why"]) == (expected.agents, None)
    assert billing["agents_staffed"] == pytest.approx((3 * 840 + 300) / 840, rel=1e-12)
    sales = rows["sales"]
    assert (sales["agents_needed"], sales["needed_why"], sales["agents_staffed"]) == (
        None,
        "fewer than 10 calls",
        None,
    )
    assert only_billing.to_dicts() == [billing]
    # The HTML report's table carries the same columns: needed 4 beside staffed 3.357.
    assert "<th>agents_needed</th><th>agents_staffed</th>" in page.replace(' class=""', "")
    assert f"<td>{expected.agents}</td><td>{(3 * 840 + 300) / 840:.3f}</td>" in page.replace(' class=""', "")
