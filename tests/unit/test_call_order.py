"""Dedupe and order checks of a batch's call events against their calls' stored state."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl

from pipeline.core.call_order import KIND_TIMES, call_order_violations, new_call_events

TS = pl.Datetime("us", "UTC")


def t(minute: int) -> datetime:
    return datetime(2026, 3, 2, 9, minute, tzinfo=UTC)


def events(*rows: tuple[str, str, str, int]) -> pl.DataFrame:
    """(call_id, queue, event, minute) in _row order."""
    return pl.DataFrame(
        {
            "_row": list(range(len(rows))),
            "call_id": [r[0] for r in rows],
            "queue": [r[1] for r in rows],
            "event": [r[2] for r in rows],
            "ts": [t(r[3]) for r in rows],
        },
        schema_overrides={"ts": TS},
    )


def known(*rows: tuple[str, str, dict[str, int]]) -> pl.DataFrame:
    """(call_id, queue, {kind: minute}): call_state rows of the batch's calls."""
    data: dict[str, list[object]] = {"call_id": [r[0] for r in rows], "queue": [r[1] for r in rows]}
    for col in KIND_TIMES:
        kind = col.removesuffix("_at")
        data[col] = [t(r[2][kind]) if kind in r[2] else None for r in rows]
    return pl.DataFrame(data, schema={"call_id": pl.String, "queue": pl.String, **{c: TS for c in KIND_TIMES}})


def test_an_event_whose_kind_is_stored_for_its_call_and_queue_is_a_duplicate() -> None:
    batch = events(
        ("c1", "q1", "offered", 5),  # stored (even at another time): duplicate
        ("c1", "q1", "answered", 6),  # not stored yet
        ("c1", "q2", "offered", 7),  # same call, another queue: new
        ("c2", "q1", "offered", 1),  # no stored row at all
    )
    stored = known(("c1", "q1", {"offered": 1}))
    assert new_call_events(batch, stored).get_column("_row").to_list() == [1, 2, 3]
    assert new_call_events(batch, known()).get_column("_row").to_list() == [0, 1, 2, 3]
    assert new_call_events(batch, stored).columns == batch.columns


def test_order_violations_against_the_batch_and_the_stored_state() -> None:
    batch = events(
        ("c1", "q1", "answered", 4),  # before c1's offer in this batch (5)
        ("c1", "q1", "offered", 5),
        ("c2", "q1", "abandoned", 2),  # before c2's stored offer (3)
        ("c3", "q1", "ended", 8),  # before c3's stored answer (9) and after its offer (1)
        ("c4", "q1", "offered", 20),  # after c4's stored abandon (12)
        ("c5", "q1", "ended", 0),  # before both its offer and answer: the offer's reason wins
        ("c5", "q1", "offered", 1),
        ("c5", "q1", "answered", 2),
        ("c6", "q1", "answered", 3),  # in order: offered 1 stored, answered 3, ended 9
        ("c6", "q1", "ended", 9),
        ("c7", "q1", "offered", 30),  # nothing stored but a later offer: fine
    )
    stored = known(
        ("c2", "q1", {"offered": 3}),
        ("c3", "q1", {"offered": 1, "answered": 9}),
        ("c4", "q1", {"offered": 10, "abandoned": 12}),
        ("c6", "q1", {"offered": 1}),
    )
    got = call_order_violations(batch, stored)
    assert got.rows() == [
        (0, "answered before offered"),
        (2, "abandoned before offered"),
        (3, "ended before answered"),
        (4, "offered after the call's stored outcome"),
        (5, "ended before offered"),
    ]


def test_a_batch_without_stored_calls_is_checked_on_its_own() -> None:
    batch = events(("c1", "q1", "ended", 3), ("c1", "q1", "answered", 4), ("c1", "q1", "offered", 1))
    assert call_order_violations(batch, known()).rows() == [(0, "ended before answered")]
