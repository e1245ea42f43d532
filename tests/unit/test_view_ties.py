"""Rows at one instant give the views one answer, whatever order they were stored in: a
case's first call, queue and category, the centre's outcome of a call offered to two queues
at once."""

from __future__ import annotations

from itertools import permutations
from typing import Any

from tests.helpers import engine, feed, frame, offered


def _offer(call_id: str, queue: str, category: str) -> dict[str, Any]:
    return {**offered(call_id, 5, queue), "case_id": "K1", "category": category}


def _abandoned(call_id: str, queue: str) -> dict[str, Any]:
    return {**offered(call_id, 5, queue), "event": "abandoned", "at": "2026-03-02T09:06:00Z"}


RECORDS = [
    _offer("c2", "cards", "fraud"),
    _offer("c1", "loans", "dispute"),
    _offer("c1", "billing", "dispute"),
    _abandoned("c1", "billing"),
]


def _seen(order: tuple[dict[str, Any], ...]) -> tuple[Any, ...]:
    eng = engine()
    try:
        for record in order:  # one batch each: the rows land in this order
            feed(eng, [record])
        case = frame(eng, "SELECT queue, category, contacts FROM cases").rows()
        centre = frame(eng, "SELECT offered, abandoned, waiting FROM kpi_centre_interval").rows()
        return tuple(case), tuple(centre)
    finally:
        eng.close()


def test_one_instant_gives_one_answer_whatever_the_order() -> None:
    seen = {_seen(order) for order in permutations(RECORDS[:3])}
    # c1 before c2 (call_id), then billing before loans (queue): its category 'dispute'
    assert seen == {((("billing", "dispute", 2),), ((2, 0, 2),))}
    # c1's last queue at 09:05, by name, is loans (still waiting), not billing
    with_abandon = {_seen((*order, RECORDS[3])) for order in permutations(RECORDS[:3])}
    assert with_abandon == {((("billing", "dispute", 2),), ((2, 0, 2),))}
