"""The pure report builders: KPI formulas, undefined values, site-local days, charts."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from metrics.reports import html as report_html
from metrics.reports import tables as reports


def sums(**over: object) -> dict[str, object]:
    row: dict[str, object] = {n: 0 for n in reports.QUEUE_SUMS}
    row.update(
        queue="billing",
        interval_start=datetime(2026, 3, 2, 1, tzinfo=UTC),
        interval_s=900,
        max_wait_s=None,
        sl_formula="negative",
    )
    row.update(over)
    return row


def frame(rows: list[dict[str, object]]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema_overrides={
            "max_wait_s": pl.Float64,
            "answer_wait_s": pl.Float64,
            "handle_s": pl.Float64,
        },
    )


@pytest.mark.parametrize(
    ("formula", "expected"),
    [
        ("negative", 0.70),
        ("without_abandons", 70 / 90),
        ("positive", 0.80),
        ("answered_only", 70 / 90),
    ],
)
def test_service_level_formulas_on_ciscos_example(formula: str, expected: float) -> None:
    # 70 answered within T, 10 abandoned within T, 20 answered after T, no short abandons.
    row = sums(
        offered=100,
        answered=90,
        abandoned=10,
        abandoned_in_sl=10,
        answered_in_sl=70,
        sl_formula=formula,
    )
    out = reports.queues_report(frame([row]))
    assert out.get_column("service_level").item() == pytest.approx(expected)


def test_short_abandons_leave_offered_first_and_undefined_is_null() -> None:
    row = sums(
        offered=10,
        answered=5,
        abandoned=5,
        short_abandoned=3,
        answered_in_sl=4,
        answer_wait_s=50.0,
        handled=5,
        handle_s=1000.0,
        transferred=1,
    )
    out = reports.queues_report(frame([row])).to_dicts()[0]
    assert out["service_level"] == pytest.approx(4 / 7)
    assert out["abandon_rate"] == pytest.approx(2 / 7)
    assert out["asa_s"] == 10 and out["aht_s"] == 200 and out["transfer_rate"] == pytest.approx(0.2)
    assert out["repeat_rate"] is None and out["fcr"] is None
    empty = reports.queues_report(frame([sums()])).to_dicts()[0]
    for k in ("service_level", "asa_s", "abandon_rate", "aht_s", "transfer_rate"):
        assert empty[k] is None, k


def test_daily_report_follows_the_site_time_zone_across_dst() -> None:
    # Berlin, 29 March 2026: local midnight is 23:00 UTC the day before; the day has 23 hours.
    rows = [
        sums(interval_start=datetime(2026, 3, 28, 22, 45, tzinfo=UTC), offered=1),  # 28th, 23:45 CET
        sums(interval_start=datetime(2026, 3, 28, 23, 0, tzinfo=UTC), offered=2),  # 29th, 00:00 CET
        sums(interval_start=datetime(2026, 3, 29, 21, 45, tzinfo=UTC), offered=4),  # 29th, 23:45 CEST
        sums(interval_start=datetime(2026, 3, 29, 22, 0, tzinfo=UTC), offered=8),
    ]  # 30th
    out = reports.daily_report(frame(rows), "Europe/Berlin")
    got = {r["day"]: (r["offered"], r["hours"]) for r in out.to_dicts()}
    assert got == {
        date(2026, 3, 28): (1, 24.0),
        date(2026, 3, 29): (6, 23.0),
        date(2026, 3, 30): (8, 24.0),
    }
    autumn = reports.daily_report(frame([sums(interval_start=datetime(2026, 10, 25, 12, tzinfo=UTC))]), "Europe/Berlin")
    assert autumn.get_column("hours").item() == 25.0


@given(
    st.lists(
        st.tuples(st.integers(0, 50), st.integers(0, 50), st.integers(0, 50)),
        min_size=1,
        max_size=20,
    )
)
def test_rates_stay_within_0_and_1_and_grouping_is_additive(
    parts: list[tuple[int, int, int]],
) -> None:
    rows = []
    for i, (ans_sl, ans_late, aband) in enumerate(parts):
        rows.append(
            sums(
                interval_start=datetime(2026, 3, 2, i, tzinfo=UTC),
                offered=ans_sl + ans_late + aband,
                answered=ans_sl + ans_late,
                answered_in_sl=ans_sl,
                abandoned=aband,
            )
        )
    f = frame(rows)
    whole = reports.queues_report(f).to_dicts()[0]
    for k in ("service_level", "abandon_rate"):
        assert whole[k] is None or 0 <= whole[k] <= 1
    intervals = reports.interval_report(f, "UTC")
    assert intervals.get_column("offered").sum() == whole["offered"]


def test_abandon_curve_and_aht_distribution() -> None:
    calls = pl.DataFrame(
        {
            "outcome": ["abandoned", "abandoned", "answered", "answered", "waiting"],
            "wait_s": [3.0, 25.0, 5.0, 40.0, None],
            "handle_s": [None, None, 90.0, 150.0, None],
        }
    )
    curve = dict(reports.abandon_curve(calls, step_s=10, max_s=30).iter_rows())
    assert curve == {0.0: 0.0, 10.0: 0.25, 20.0: 0.25, 30.0: 0.5}
    assert dict(reports.aht_distribution(calls).iter_rows()) == {60.0: 1, 120.0: 1}
    assert reports.abandon_curve(calls.head(0)).get_column("abandoned_share").null_count() == 31


def test_html_is_self_contained_and_escapes_text() -> None:
    main = pl.DataFrame({"queue": ["<b>billing</b>"], "offered": [3]})
    centre = reports.centre_by_interval(frame([sums(offered=3, answered=3, answered_in_sl=2)]), "Asia/Shanghai")
    agents = pl.DataFrame(
        {
            "agent_id": ["a-1"],
            "handled": [3],
            "aht_s": [200.0],
            "occupancy": [0.5],
            "qa_score": [88.0],
            "qa_count": [1],
        }
    )
    text = report_html.render(
        "t",
        "meta",
        "queues",
        main,
        centre,
        reports.abandon_curve(pl.DataFrame({"outcome": ["answered"], "wait_s": [1.0]})),
        pl.DataFrame({"bin_start_s": [60.0], "calls": [3]}),
        agents,
    )
    assert "<script" not in text and "<b>billing" not in text and "&lt;b&gt;billing" in text
    urls = set(re.findall(r"https?://[^\"' )]+", text))
    assert urls <= {"http://www.w3.org/2000/svg"}
    assert text.count("<svg") >= 4
