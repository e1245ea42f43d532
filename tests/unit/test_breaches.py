"""The breach state machine (metrics.kpi.breaches.BreachBook) and its evaluation points."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from metrics.kpi.breaches import LIVE, Breach, BreachBook, Evaluation, evaluation_points, worse

T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)


def at(minute: int) -> datetime:
    return T0 + timedelta(minutes=minute)


def sl(minute: int, value: float | None, enough: bool = True, queue: str = "billing") -> Evaluation:
    return Evaluation(queue, "service_level", "15m", at(minute), value, 0.8, enough)


def run(book: BreachBook, values: Sequence[float | None], kpi: str = "service_level") -> list[list[Breach]]:
    target = {"service_level": 0.8, "abandon_rate": 0.05, "asa": 30.0, "oldest_wait": 120.0}[kpi]
    window = LIVE if kpi == "oldest_wait" else "15m"
    out = []
    for minute, value in enumerate(values):
        evs = [] if value is None else [Evaluation("billing", kpi, window, at(minute), value, target)]
        out.append(book.apply(at(minute), evs))
    return out


@pytest.mark.parametrize(
    ("kpi", "value", "breaching"),
    [
        ("service_level", 0.79, True),
        ("service_level", 0.8, False),
        ("service_level", 0.95, False),
        ("abandon_rate", 0.06, True),
        ("abandon_rate", 0.05, False),
        ("asa", 31.0, True),
        ("asa", 30.0, False),
        ("oldest_wait", 121.0, True),
        ("oldest_wait", 120.0, False),
    ],
)
def test_direction_of_each_kpi(kpi: str, value: float, breaching: bool) -> None:
    target = {"service_level": 0.8, "abandon_rate": 0.05, "asa": 30.0, "oldest_wait": 120.0}[kpi]
    assert Evaluation("q", kpi, "15m", T0, value, target).breaching is breaching


def test_undefined_or_too_few_calls_never_breach() -> None:
    assert not sl(0, None).breaching
    assert not sl(0, 0.1, enough=False).breaching


def test_opens_with_value_and_tracks_worst() -> None:
    book = BreachBook(hold_s=300)
    changes = run(book, [0.9, 0.7, 0.6, 0.65, 0.5])
    assert changes[0] == []
    opened = changes[1][0]
    assert (opened.opened_at, opened.value, opened.worst_value, opened.closed_at) == (
        at(1),
        0.7,
        0.7,
        None,
    )
    assert changes[2][0].worst_value == 0.6
    assert changes[3] == []  # 0.65 is not worse than 0.6: nothing to write
    assert changes[4][0].worst_value == 0.5
    assert book.open[("billing", "service_level", "15m")].value == 0.7


def test_higher_is_worse_for_waits() -> None:
    book = BreachBook(hold_s=0)
    changes = run(book, [200.0, 150.0, 300.0], kpi="oldest_wait")
    assert changes[0][0].window == LIVE
    assert changes[2][0].worst_value == 300.0
    assert worse("asa", 10.0, 20.0) == 20.0 and worse("service_level", 0.5, 0.7) == 0.5


def test_closes_only_after_the_hold_and_at_the_recovery_point() -> None:
    book = BreachBook(hold_s=300)
    changes = run(book, [0.5, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9])
    # back inside from minute 1; the hold (5 min) has passed at minute 6
    assert all(c.closed_at is None for cs in changes[:6] for c in cs)
    closed = changes[6][0]
    assert closed.closed_at == at(1)
    assert closed.opened_at == at(0)
    assert book.open == {}


def test_no_flapping_a_dip_during_the_hold_keeps_one_breach() -> None:
    book = BreachBook(hold_s=300)
    values = [0.5, 0.9, 0.9, 0.7, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9]
    changes = run(book, values)
    rows = [c for cs in changes for c in cs]
    assert {r.opened_at for r in rows} == {at(0)}  # one breach, never reopened
    closed = [r for r in rows if r.closed_at is not None]
    assert len(closed) == 1 and closed[0].closed_at == at(4)
    assert closed[0].worst_value == 0.5


def test_missing_evaluation_counts_as_inside_target() -> None:
    book = BreachBook(hold_s=60)
    changes = run(book, [0.5, None, None])
    assert changes[2][0].closed_at == at(1)


def test_hold_zero_closes_at_the_first_good_point() -> None:
    book = BreachBook(hold_s=0)
    changes = run(book, [0.5, 0.9])
    assert changes[1][0].closed_at == at(1)


def test_min_calls_gate() -> None:
    book = BreachBook(hold_s=0)
    assert book.apply(at(0), [sl(0, 0.1, enough=False)]) == []
    assert book.apply(at(1), [sl(1, 0.1, enough=True)])[0].opened_at == at(1)


def test_queues_are_independent() -> None:
    book = BreachBook(hold_s=0)
    changes = book.apply(at(0), [sl(0, 0.5, queue="a"), sl(0, 0.9, queue="b")])
    assert [c.queue for c in changes] == ["a"]


def test_a_book_restored_from_open_rows_continues() -> None:
    first = BreachBook(hold_s=300)
    run(first, [0.5, 0.9, 0.9])
    restored = BreachBook(hold_s=300, open_breaches=first.open.values())
    closed = restored.apply(at(6), [sl(6, 0.9)])
    assert closed[0].closed_at == at(1)


@given(st.lists(st.one_of(st.none(), st.floats(0, 1)), max_size=40), st.integers(0, 600))
def test_breaches_never_overlap_and_worst_is_extreme(values: list[float | None], hold_s: int) -> None:
    book = BreachBook(hold_s=hold_s)
    rows: dict[datetime, Breach] = {}
    for cs in run(book, values):
        for c in cs:
            rows[c.opened_at] = c
    spans = sorted(rows.values(), key=lambda b: b.opened_at)
    for a, b in zip(spans, spans[1:], strict=False):
        assert a.closed_at is not None and a.closed_at <= b.opened_at
    for b in spans:
        assert b.worst_value is not None and b.value is not None
        assert b.worst_value <= b.value < 0.8


def test_evaluation_points_are_minute_boundaries_strictly_before_the_watermark() -> None:
    first = datetime(2026, 3, 2, 0, 0, 30, tzinfo=UTC)
    wm = datetime(2026, 3, 2, 0, 3, 0, tzinfo=UTC)
    lo, hi = evaluation_points(first, wm, None)  # type: ignore[misc]
    assert (lo, hi) == (int(first.timestamp()) - 30, int(wm.timestamp()) - 60)
    assert evaluation_points(first, wm, datetime.fromtimestamp(hi, UTC)) is None
    later = wm + timedelta(seconds=1)
    assert evaluation_points(first, later, datetime.fromtimestamp(hi, UTC)) == (
        int(wm.timestamp()),
        int(wm.timestamp()),
    )
    assert evaluation_points(None, wm, None) is None
    assert evaluation_points(first, None, None) is None
