"""Retention: raw events older than N days are deleted; aggregates are kept.

Deleted: ``call_events``, ``agent_events``, ``qa_evals`` older than the watermark
minus N days (event time, so a replay deletes what the live run did), except each
agent's latest event (the state the agent is still in); ``dead_letters`` received
more than N days before ``now``.

Kept: ``queue_interval``, ``agent_interval``, ``breaches`` (the KPI history) and
``call_state`` (one row per call and queue: the ``calls`` view, ``cases``,
repeat-contact and centre totals are built on it; it holds the caller only as a
keyed hash and a mask). ``source_offsets``, ``pipeline_state`` and
``queue_settings`` are configuration and progress, not events.

A KPI setting change recomputes queue intervals from ``call_state`` (nothing lost);
only a change of the interval length recomputes agent intervals, from the agent
events still kept. A full ``Store.rebuild()`` (tests, repair) uses the events alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import duckdb

from pipeline.core import sqlfiles
from pipeline.core.errors import OperatorError
from pipeline.core.store import listed_intervals


@dataclass(frozen=True, slots=True)
class RetentionResult:
    events_before: datetime | None
    dead_before: datetime
    deleted: dict[str, int]


class IntervalsListed(OperatorError):
    """The database lists interval aggregates still to be recomputed: retention waits for them."""

    def __init__(self, listed: int) -> None:
        super().__init__(
            f"{listed:,} interval aggregates are still to be recomputed, and they may need the events retention "
            "would delete: nothing deleted (Store.recompute_intervals, or Store.finish_listed on a stopped "
            "pipeline's database, first)"
        )
        self.listed = listed


def cutoffs(con: duckdb.DuckDBPyConnection, days: int, now: datetime) -> tuple[datetime | None, datetime]:
    state = sqlfiles.first(con, "schema/pipeline_state")
    wm = state[0] if state else None
    return (wm - timedelta(days=days) if wm is not None else None), now - timedelta(days=days)


def apply(con: duckdb.DuckDBPyConnection, days: int, now: datetime, dry_run: bool = False) -> RetentionResult:
    """Delete raw rows older than ``days`` in one transaction (the writer connection, engine
    thread, after ``Store.recompute_intervals``). Refused (``IntervalsListed``) while intervals
    wait for their recompute: an agent interval is recomputed from the agent's events, also
    the one before it that retention could take."""
    if days < 1:
        raise ValueError("retention days must be at least 1")
    if not dry_run and (listed := listed_intervals(con)):
        raise IntervalsListed(listed)
    events_before, dead_before = cutoffs(con, days, now)
    # No watermark yet means no events: nothing to delete but old dead letters.
    params: dict[str, object] = {
        "events_before": events_before or datetime.min.replace(tzinfo=now.tzinfo),
        "dead_before": dead_before,
    }
    counts = {name: n for name, n in sqlfiles.rows(con, "ops/expired_rows", **params)}
    if not dry_run and any(counts.values()):
        with sqlfiles.transaction(con):
            sqlfiles.run(con, "ops/delete_expired", **params)
    return RetentionResult(events_before, dead_before, counts)
