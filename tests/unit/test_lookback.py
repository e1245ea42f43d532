"""Where the agent-interval recompute starts reading back for its agents' states
(pipeline/core/lookback.py), against a naive reading of every stored event.

The bound must be at or before every touched agent's latest event before the interval
opens (else the recompute misses that agent's state) and, to keep a batch's reads small,
no earlier than the earliest of them.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import pytest

from pipeline.core import sqlfiles
from pipeline.core.config import Config
from pipeline.core.lookback import StateBounds
from pipeline.core.store import Store

OPENS = datetime(2026, 3, 9, 9, 0, tzinfo=UTC)


@pytest.fixture
def store() -> Iterable[Store]:
    s = Store.open(":memory:", Config())
    yield s
    s.close()


def _events(store: Store, *events: tuple[str, datetime]) -> None:
    for agent, ts in events:
        store.con.execute(
            "INSERT INTO agent_events (agent_id, ts, state) VALUES ($agent, $ts, 'ready')", {"agent": agent, "ts": ts}
        )


def _touch(store: Store, *agents: str, at: datetime = OPENS) -> None:
    sqlfiles.run(store.con, "ingest/clear_recomputed")
    for agent in agents:
        store.con.execute("INSERT INTO touched_a VALUES ($agent, $at)", {"agent": agent, "at": at})


def _naive(store: Store, agents: Iterable[str], opens: datetime) -> datetime:
    """The earliest of the agents' latest events before ``opens``, read from every event."""
    latest = []
    for agent in agents:
        (ts,) = store.con.execute(
            "SELECT max(ts) FROM agent_events WHERE agent_id = $agent AND ts < $opens", {"agent": agent, "opens": opens}
        ).fetchone() or (None,)
        if ts is not None:
            latest.append(ts)
    return min(latest, default=opens)


def test_the_bound_is_the_earliest_of_the_touched_agents_latest_states_at_any_distance(store: Store) -> None:
    _events(
        store,
        ("minutes", OPENS - timedelta(minutes=3)),
        ("minutes", OPENS - timedelta(minutes=40)),
        ("night", OPENS - timedelta(hours=15)),
        ("weekend", OPENS - timedelta(days=2, hours=15)),
        ("leave", OPENS - timedelta(days=30)),
        ("leave", OPENS + timedelta(minutes=2)),  # after the interval opened: not its state then
        ("new", OPENS + timedelta(minutes=1)),
    )
    bounds = StateBounds()
    for agents in (["minutes"], ["minutes", "night"], ["minutes", "weekend"], ["leave", "minutes"], ["new"]):
        _touch(store, *agents)
        assert bounds.since(store.con, OPENS) == _naive(store, agents, OPENS), agents
    assert _naive(store, ["new"], OPENS) == OPENS  # an agent with no state before bounds nothing


def test_an_agents_state_is_searched_once_per_interval(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    _events(store, ("a", OPENS - timedelta(hours=15)), ("b", OPENS - timedelta(minutes=5)))
    searched: list[list[str]] = []
    rows = sqlfiles.rows

    def counting(con: object, name: str, /, **params: object) -> list[tuple[object, ...]]:
        if name == "ingest/agents_latest_before":
            searched.append(list(params["agents"]))  # type: ignore[call-overload]
        return rows(con, name, **params)  # type: ignore[arg-type]

    monkeypatch.setattr(sqlfiles, "rows", counting)
    bounds = StateBounds()
    _touch(store, "a")
    first = bounds.since(store.con, OPENS)
    _touch(store, "a", "b")
    second = bounds.since(store.con, OPENS)
    # a: an hour back, then a day; b: an hour back; a is not searched again
    assert searched == [["a"], ["a"], ["b"]]
    assert (first, second) == (OPENS - timedelta(hours=15), OPENS - timedelta(hours=15))

    searched.clear()
    later = OPENS + timedelta(minutes=15)
    _events(store, ("a", OPENS + timedelta(minutes=7)))
    _touch(store, "a", at=later)
    # the next interval: a's state when it opens is its event of 9:07, searched anew
    assert bounds.since(store.con, later) == OPENS + timedelta(minutes=7)
    assert searched == [["a"]]


def test_a_late_event_before_the_interval_opens_an_earlier_one_and_is_seen(store: Store) -> None:
    _events(store, ("a", OPENS - timedelta(hours=15)))
    bounds = StateBounds()
    _touch(store, "a")
    assert bounds.since(store.con, OPENS) == OPENS - timedelta(hours=15)
    # a late event before 9:00 touches its own interval (8:45): a new opening, searched anew
    late = OPENS - timedelta(minutes=10)
    _events(store, ("a", late))
    _touch(store, "a", at=OPENS - timedelta(minutes=15))
    assert bounds.since(store.con, OPENS - timedelta(minutes=15)) == OPENS - timedelta(hours=15)
    _touch(store, "a")
    assert bounds.since(store.con, OPENS) == late == _naive(store, ["a"], OPENS)
