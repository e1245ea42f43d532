"""Breach detection in event time: a KPI past its target opens a breach; it closes only
after the KPI has been back inside the target for the hold time (no flapping).

Reproducible by construction. Evaluations happen at fixed event-time points, every
minute boundary ``m`` the watermark has passed (``m < watermark``), and each one is
computed *as of* ``m`` from the stored events alone (sql/breaches/window_kpis_as_of.sql,
sql/breaches/oldest_wait_as_of.sql): calls offered in ``(m - window, m]`` with the
outcome known at ``m``. Once the watermark is past ``m`` every event up to ``m`` has
arrived (sources are in event-time order), so the answer for ``m`` no longer depends on
how the events were batched or on when the detector happens to run: a live run in
small batches and a replay in one batch write the same ``breaches`` rows.

Pure core: ``Evaluation`` (one KPI value at one point), ``Breach`` (one breaches row)
and ``BreachBook.apply`` (the state machine). ``BreachDetector`` is the thin part that
reads evaluations from DuckDB and persists the book; it runs as a refresh job, one at a
time (the breach tables have no other writer).

KPIs and the window label: ``service_level`` (breach when below target),
``abandon_rate`` and ``asa`` (above target) on every configured window, gated by the
queue's ``min_calls`` offered in that window; ``oldest_wait`` (above target) is live,
window ``"live"``, and never gated, like the alert rules (metrics/export/rules.py).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import pyarrow as pa

from pipeline.core import sqlfiles

LIVE = "live"
STEP_S = 60
CHUNK_POINTS = 360  # evaluation points per query (6 h of event time)
CATCH_UP_POINTS = 1440  # at most a day of points per refresh

# kpi -> (column in the as-of query, target column, breach when value is below target)
WINDOW_KPIS: dict[str, tuple[str, str, bool]] = {
    "service_level": ("service_level", "target_service_level", True),
    "abandon_rate": ("abandon_rate", "target_abandon_rate", False),
    "asa": ("asa_s", "target_asa_s", False),
}
OLDEST_WAIT = "oldest_wait"
KPIS: tuple[str, ...] = (*WINDOW_KPIS, OLDEST_WAIT)
LOWER_IS_BREACH: dict[str, bool] = {**{k: v[2] for k, v in WINDOW_KPIS.items()}, OLDEST_WAIT: False}

Key = tuple[str, str, str]  # (queue, kpi, window)


@dataclass(frozen=True, slots=True)
class Evaluation:
    """One KPI of one queue and window at one evaluation point; ``value`` None if undefined."""

    queue: str
    kpi: str
    window: str
    at: datetime
    value: float | None
    target: float
    enough_calls: bool = True

    @property
    def key(self) -> Key:
        return (self.queue, self.kpi, self.window)

    @property
    def breaching(self) -> bool:
        if self.value is None or not self.enough_calls:
            return False
        if LOWER_IS_BREACH[self.kpi]:
            return self.value < self.target
        return self.value > self.target


@dataclass(frozen=True, slots=True)
class Breach:
    """One breaches row, plus ``ok_since`` while an open breach is back inside target."""

    queue: str
    kpi: str
    window: str
    target: float
    value: float | None
    worst_value: float | None
    opened_at: datetime
    closed_at: datetime | None = None
    ok_since: datetime | None = None

    @property
    def key(self) -> Key:
        return (self.queue, self.kpi, self.window)


def worse(kpi: str, a: float | None, b: float | None) -> float | None:
    """The worse of two values of ``kpi`` (the lower service level, the higher wait ...)."""
    if a is None or b is None:
        return b if a is None else a
    return min(a, b) if LOWER_IS_BREACH[kpi] else max(a, b)


class BreachBook:
    """The open breaches and the state machine that moves them, one point at a time.

    ``closed_at`` of a closed breach is the first point of the run inside target that
    lasted the hold time (when the KPI came back), not the point the hold ran out.
    """

    def __init__(self, hold_s: float, open_breaches: Iterable[Breach] = ()) -> None:
        if hold_s < 0:
            raise ValueError("hold_s must be >= 0")
        self.hold = timedelta(seconds=hold_s)
        self.open: dict[Key, Breach] = {b.key: b for b in open_breaches}

    def apply(self, at: datetime, evaluations: Iterable[Evaluation]) -> list[Breach]:
        """Move the book to point ``at``; return the breaches rows that changed.

        A key without an evaluation at ``at`` (no calls in the window, nobody waiting)
        counts as inside its target.
        """
        by_key = {e.key: e for e in evaluations}
        changed: list[Breach] = []
        for key in sorted(set(by_key) | set(self.open)):
            ev = by_key.get(key)
            current = self.open.get(key)
            breaching = ev is not None and ev.breaching
            if current is None:
                if breaching:
                    assert ev is not None
                    new = Breach(ev.queue, ev.kpi, ev.window, ev.target, ev.value, ev.value, at)
                    self.open[key] = new
                    changed.append(new)
                continue
            if breaching:
                assert ev is not None
                worst = worse(current.kpi, current.worst_value, ev.value)
                updated = replace(current, worst_value=worst, ok_since=None)
            else:
                ok_since = current.ok_since or at
                if at - ok_since >= self.hold:
                    closed = replace(current, closed_at=ok_since, ok_since=None)
                    del self.open[key]
                    changed.append(closed)
                    continue
                updated = replace(current, ok_since=ok_since)
            if updated != current:
                self.open[key] = updated
                changed.append(updated)
        return changed

    def open_keys(self) -> frozenset[Key]:
        return frozenset(self.open)


# --- evaluations from the store ----------------------------------------------------------


def evaluation_points(
    first: datetime | None,
    watermark: datetime | None,
    evaluated_to: datetime | None,
    step_s: int = STEP_S,
) -> tuple[int, int] | None:
    """The next evaluation points (epoch seconds, inclusive range) or None.

    Points are the multiples of ``step_s`` strictly before the watermark, after
    ``evaluated_to`` (or from the one at or before ``first``, the earliest call).
    """
    if watermark is None or (evaluated_to is None and first is None):
        return None
    if evaluated_to is not None:
        lo = int(evaluated_to.timestamp()) + step_s
    else:
        assert first is not None
        lo = math.floor(first.timestamp() / step_s) * step_s
    hi = math.ceil(watermark.timestamp() / step_s) * step_s - step_s
    return (lo, hi) if lo <= hi else None


def evaluations_as_of(
    con: duckdb.DuckDBPyConnection,
    first: int,
    last: int,
    windows: tuple[tuple[str, int], ...],
    step_s: int = STEP_S,
) -> Iterator[Evaluation]:
    """Every KPI evaluation at the points ``first .. last`` (epoch seconds), from SQL."""
    label = {width: name for name, width in windows}
    params = {"first": first, "last": last, "step": step_s, "widths": sorted(label)}
    for r in sqlfiles.dicts(con, "breaches/window_kpis_as_of", **params):
        enough = int(r["offered"]) >= int(r["min_calls"])
        window = label[int(r["width_s"])]
        for kpi, (column, target, _) in WINDOW_KPIS.items():
            if r[column] is not None:
                yield Evaluation(r["queue"], kpi, window, r["m"], float(r[column]), float(r[target]), enough)
    for r in sqlfiles.dicts(con, "breaches/oldest_wait_as_of", **params):
        yield Evaluation(
            r["queue"],
            OLDEST_WAIT,
            LIVE,
            r["m"],
            float(r["oldest_wait_s"]),
            float(r["target_oldest_wait_s"]),
        )


class BreachDetector:
    """Evaluates the points the watermark passed and persists the book (one caller at a time).

    Call it with the store's connection after batches (it is a refresher job); it
    returns the open breach keys, which the exporter publishes.
    """

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        windows: tuple[tuple[str, int], ...],
        hold_s: float,
        step_s: int = STEP_S,
    ) -> None:
        self.windows = windows
        self.step_s = step_s
        sqlfiles.run(con, "breaches/tables")
        self.book = BreachBook(hold_s, _open_breaches(con))

    def __call__(self, con: duckdb.DuckDBPyConnection) -> frozenset[Key]:
        """The refresh job: catch up by at most a day of points per call (a first run
        over a long history must not hold the engine up), then the open breach keys."""
        self.run(con, max_points=CATCH_UP_POINTS)
        return self.book.open_keys()

    def run(self, con: duckdb.DuckDBPyConnection, max_points: int | None = None) -> int:
        """Evaluate the new points (at most ``max_points``, oldest first); return how many.

        Evaluating a point later never changes its result, so a partial catch-up
        leaves the breaches exactly as a complete one would, only later.
        """
        clock = sqlfiles.dicts(con, "breaches/clock")[0]
        first = clock["first_offered_at"] if clock["evaluated_to"] is None else None
        span = evaluation_points(first, clock["watermark"], clock["evaluated_to"], self.step_s)
        if span is None:
            return 0
        lo, hi = span
        if max_points is not None:
            hi = min(hi, lo + self.step_s * (max_points - 1))
        done = 0
        for start in range(lo, hi + 1, self.step_s * CHUNK_POINTS):
            end = min(hi, start + self.step_s * (CHUNK_POINTS - 1))
            self._chunk(con, start, end)
            done += (end - start) // self.step_s + 1
        return done

    def _chunk(self, con: duckdb.DuckDBPyConnection, first: int, last: int) -> None:
        by_point: dict[datetime, list[Evaluation]] = {}
        for ev in evaluations_as_of(con, first, last, self.windows, self.step_s):
            by_point.setdefault(ev.at, []).append(ev)
        changed: dict[tuple[Key, datetime], Breach] = {}
        for point in range(first, last + 1, self.step_s):
            at = datetime.fromtimestamp(point, tz=UTC)
            for b in self.book.apply(at, by_point.get(at, ())):
                changed[(b.key, b.opened_at)] = b
        try:
            with sqlfiles.transaction(con):
                if changed:
                    con.register("breach_changes", _frame(list(changed.values())))
                    try:
                        sqlfiles.run(con, "breaches/save")
                    finally:
                        con.unregister("breach_changes")
                sqlfiles.run(con, "breaches/set_clock", evaluated_to=datetime.fromtimestamp(last, tz=UTC))
        except BaseException:
            self.book = BreachBook(self.book.hold.total_seconds(), _open_breaches(con))  # as stored
            raise


def _frame(rows: list[Breach]) -> pa.Table:
    ts = pa.timestamp("us", tz="UTC")
    return pa.table(
        {
            "queue": pa.array([b.queue for b in rows], pa.string()),
            "kpi": pa.array([b.kpi for b in rows], pa.string()),
            "window": pa.array([b.window for b in rows], pa.string()),
            "target": pa.array([b.target for b in rows], pa.float64()),
            "value": pa.array([b.value for b in rows], pa.float64()),
            "worst_value": pa.array([b.worst_value for b in rows], pa.float64()),
            "opened_at": pa.array([b.opened_at for b in rows], ts),
            "closed_at": pa.array([b.closed_at for b in rows], ts),
            "ok_since": pa.array([b.ok_since for b in rows], ts),
        }
    )


def _open_breaches(con: duckdb.DuckDBPyConnection) -> list[Breach]:
    return [_breach(r) for r in sqlfiles.dicts(con, "breaches/open")]


def _breach(r: dict[str, Any]) -> Breach:
    return Breach(
        r["queue"],
        r["kpi"],
        r["window"],
        r["target"],
        r["value"],
        r["worst_value"],
        r["opened_at"],
        None,
        r["ok_since"],
    )
