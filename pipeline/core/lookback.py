"""How far back a query reads the agents' events for each agent's state when a span opens.

An agent's state at a moment is its latest event before it: for a live batch minutes
back, after a night or a weekend days back, for an agent new to the database nowhere.
A query that read the whole of ``agent_events`` to find it would cost in proportion to
the history, so the searches here look back a bounded span first and widen it in turn.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import duckdb

from pipeline.core import sqlfiles

# The spans searched in turn: an agent busy this hour, one back from the night or a weekend.
AGENT_LOOKBACK_S: tuple[float, ...] = (3600.0, 86400.0, 4 * 86400.0)
# "At any time": the last search, for the agents none of the spans found.
_EVER = datetime(1, 1, 1, tzinfo=UTC)


def agents_lookback(con: duckdb.DuckDBPyConnection, missing: str, opens: datetime, **params: object) -> datetime | None:
    """The nearest of ``opens`` minus AGENT_LOOKBACK_S from which the query ``missing`` (run
    with ``since`` and ``params``) finds no agent lacking its state before ``opens``; None
    if every span leaves one out (then a query must read the agents' whole history)."""
    for span in AGENT_LOOKBACK_S:
        since = opens - timedelta(seconds=span)
        row = sqlfiles.first(con, missing, since=since, **params)
        if row is not None and row[0] == 0:
            return since
    return None


class StateBounds:
    """Where the agent-interval recompute starts reading back for its agents' states: the
    earliest of the touched agents' latest events before the first touched interval opens
    (``opens``).

    Each agent's latest event before ``opens`` is searched once (an hour back, a day, four
    days, then at any time) and kept while ``opens`` stays the same: the live batches of an
    interval touch mostly the same agents, and early in a shift, with the agents back from
    the night, every batch searched (and the recompute read) four days back. A kept time
    stays right: later events at or after ``opens`` do not change an agent's latest event
    before it, and a late event before it opens an earlier interval, a new ``opens`` (the
    kept times are dropped). An agent with no event before ``opens`` bounds nothing.
    """

    def __init__(self) -> None:
        self._opens: datetime | None = None
        self._latest: dict[str, datetime | None] = {}

    def since(self, con: duckdb.DuckDBPyConnection, opens: datetime) -> datetime:
        """The bound for the agents now in ``touched_a`` (their ranges start at ``opens`` or later)."""
        if opens != self._opens:
            self._opens, self._latest = opens, {}
        agents = [agent for (agent,) in sqlfiles.rows(con, "ingest/touched_agents")]
        unknown = [agent for agent in agents if agent not in self._latest]
        if unknown:
            self._search(con, opens, unknown)
        return min((t for agent in agents if (t := self._latest[agent]) is not None), default=opens)

    def _search(self, con: duckdb.DuckDBPyConnection, opens: datetime, agents: Sequence[str]) -> None:
        left = list(agents)
        for since in [opens - timedelta(seconds=span) for span in AGENT_LOOKBACK_S] + [_EVER]:
            found = dict(sqlfiles.rows(con, "ingest/agents_latest_before", agents=left, opens=opens, since=since))
            self._latest.update(found)
            left = [agent for agent in left if agent not in found]
            if not left:
                return
        self._latest.update(dict.fromkeys(left))  # no event before opens
