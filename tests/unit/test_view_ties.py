"""Rows at one instant give the views one answer, whatever order they were stored in: a
case's queue, category, first and resolving call; the centre's outcome of a call offered
to two queues at once; a call's vendor score kind of equal scores."""

from __future__ import annotations

from collections.abc import Iterable
from itertools import permutations
from typing import Any

from tests.helpers import engine, feed, frame


def _call(event: str, call_id: str, queue: str, hm: str, **extra: Any) -> dict[str, Any]:
    return {"type": "call", "event": event, "call_id": call_id, "queue": queue, "at": f"2026-03-02T{hm}:00Z", **extra}


def _score(call_id: str, leg: str, kind: str) -> dict[str, Any]:
    return {
        "type": "quality",
        "call_id": call_id,
        "leg": leg,
        "direction": "in",
        "at": "2026-03-02T09:30:00Z",
        "vendor_score": 50,
        "vendor_score_kind": kind,
    }


# Case K1: c1 offered to billing and loans and c2 to cards, all at 09:05; c1 (billing) and
# c2 both end resolved at 09:10.
CASE = [
    _call("offered", "c2", "cards", "09:05", case_id="K1", category="fraud"),
    _call("offered", "c1", "loans", "09:05", case_id="K1", category="dispute"),
    _call("offered", "c1", "billing", "09:05", case_id="K1", category="dispute"),
]
CASE_ENDS = [
    _call("answered", "c2", "cards", "09:06"),
    _call("ended", "c2", "cards", "09:10", resolved=True),
    _call("answered", "c1", "billing", "09:06"),
    _call("ended", "c1", "billing", "09:10", resolved=True),
]
# c3 offered to q1 and q2 at 09:20, abandoned on q1 and exited from q2 at 09:21; c4 offered
# to both at 09:35 and abandoned on q1 at 09:36, still waiting in q2.
CENTRE = [
    _call("offered", "c3", "q1", "09:20"),
    _call("offered", "c3", "q2", "09:20"),
    _call("offered", "c4", "q1", "09:35"),
    _call("offered", "c4", "q2", "09:35"),
]
CENTRE_ENDS = [
    _call("abandoned", "c3", "q1", "09:21"),
    _call("exited", "c3", "q2", "09:21"),
    _call("abandoned", "c4", "q1", "09:36"),
]
SCORES = [_score("c3", "a", "kind_b"), _score("c3", "b", "kind_a")]


def _seen(batches: Iterable[list[dict[str, Any]]]) -> tuple[Any, ...]:
    eng = engine()
    try:
        for b in batches:
            feed(eng, b)
        assert frame(eng, "SELECT count(*) AS n FROM dead_letters")["n"][0] == 0
        case = frame(eng, "SELECT queue, category, contacts, resolved_first_contact FROM cases").rows()
        centre = frame(
            eng,
            "SELECT strftime(interval_start, '%H:%M'), offered, abandoned, exited, waiting "
            "FROM kpi_centre_interval ORDER BY 1",
        ).rows()
        kinds = frame(eng, "SELECT call_id, vendor_score_kind FROM call_quality ORDER BY 1").rows()
        return tuple(case), tuple(centre), tuple(kinds)
    finally:
        eng.close()


def _orders(first: list[dict[str, Any]], then: list[dict[str, Any]]) -> list[list[list[dict[str, Any]]]]:
    """``first`` then ``then``, each forwards and backwards, one record per batch (so each
    stored leg moves to the end of the call state in turn)."""
    return [[[r] for r in (*a, *b)] for a in (first, first[::-1]) for b in (then, then[::-1])]


def test_a_case_gives_one_answer_in_every_storing_order() -> None:
    seen = {_seen(order) for order in _orders(CASE, CASE_ENDS)}
    # c1 before c2 (call_id), billing before loans (queue): billing, dispute; of the two
    # calls ending resolved at 09:10 the resolving one is c1, its first contact
    assert {s[0] for s in seen} == {(("billing", "dispute", 2, True),)}


def test_a_call_offered_to_two_queues_at_once_gives_the_centre_one_outcome() -> None:
    seen = {_seen(order) for order in _orders(CENTRE, CENTRE_ENDS)}
    # c3: both legs finished at once, the last by name (q2: exited); c4: the abandoned leg
    # goes before the one still waiting
    assert {s[1] for s in seen} == {(("09:15", 1, 0, 1, 0), ("09:30", 1, 1, 0, 0))}


def test_equal_vendor_scores_give_the_first_kind_by_name() -> None:
    seen = {_seen([CENTRE, [a], [b]]) for a, b in permutations(SCORES)}
    assert {s[2] for s in seen} == {(("c3", "kind_a"),)}
