"""Breach detection in event time: a KPI past its target opens a breach; it closes only
after the KPI has been back inside the target for the hold time (no flapping).

A pure function of the stored data. Evaluations happen at fixed event-time points, every
minute boundary ``m`` the watermark has passed (``m < watermark``), and each one is
computed *as of* ``m`` from the stored calls alone (sql/breaches/window_kpis_as_of.sql,
sql/breaches/oldest_wait_as_of.sql): calls offered in ``(m - window, m]`` with the
outcome known at ``m``. Events may still arrive for minutes already decided (a late
event, a CDR written when its call ended, one partition behind another): the store marks
the earliest event time of the calls each batch changed (``calls_changed``, in the
batch's transaction), and the next run takes evaluation back to the first point at or
after it, restores every breach to its state there from ``breach_log`` (each change, at
the point that made it) and decides the minutes from there again (a live event, after
the last point decided, takes nothing back). So however the events were batched,
interleaved or re-delivered, and wherever a worker was killed, the ``breaches`` rows are
those of a replay of the same data in one batch.

Pure core: ``Evaluation`` (one KPI value at one point), ``Breach`` (one breaches row)
and ``BreachBook.apply`` (the state machine). ``BreachDetector`` is the thin part that
reads evaluations from DuckDB and persists the book; ``attach`` runs it after the
engine's batches, on the engine's thread (the breach tables have no other writer), and
to the watermark when the source runs dry.

KPIs, their direction and gating come from the KPI table (metrics.kpi.definitions):
the rolling ones are evaluated on every configured window, gated by the queue's
``min_calls`` offered in that window (the share of poor-quality calls by ``min_calls``
calls with quality; as of ``m`` it knows the quality records stamped at or before ``m``,
and a quality record stored later takes evaluation back like a call event); the live one (oldest wait) has the window
``"live"`` and is never gated, like the alert rules (metrics/export/rules.py).

Settings are not data: a changed target or threshold applies from the minutes decided
after the change, and leaves the breaches decided before it as they were.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import pyarrow as pa

from metrics.kpi import definitions
from metrics.kpi.definitions import LIVE
from pipeline.core import sqlfiles
from pipeline.core.engine import BatchResult, Engine

log = logging.getLogger("callpulse.breaches")

STEP_S = 60
CHUNK_POINTS = 360  # evaluation points per query (6 h of event time)
CATCH_UP_POINTS = 1440  # at most a day of points per refresh

Key = tuple[str, str, str]  # (queue, kpi, window)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


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
        return definitions.BY_NAME[self.kpi].verdict(self.value, self.target, self.enough_calls) is False


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
    return definitions.BY_NAME[kpi].worse(a, b)


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


def first_point_at_or_after(t: datetime, step_s: int = STEP_S) -> int:
    """The first evaluation point (epoch seconds, a multiple of ``step_s``) at or after ``t``,
    in whole microseconds (a float's would round an instant 1 us beside a point onto it)."""
    us = (t - EPOCH) // timedelta(microseconds=1)
    step_us = step_s * 1_000_000
    return -(-us // step_us) * step_s


def evaluations_as_of(
    con: duckdb.DuckDBPyConnection,
    first: int,
    last: int,
    windows: tuple[tuple[str, int], ...],
    step_s: int = STEP_S,
    orphan_s: float | None = None,
) -> Iterator[Evaluation]:
    """Every KPI evaluation at the points ``first .. last`` (epoch seconds), from SQL;
    ``orphan_s``: the longest orphan_after of any queue (None: not known)."""
    label = {width: name for name, width in windows}
    params = {"first": first, "last": last, "step": step_s, "widths": sorted(label)}
    for r in sqlfiles.dicts(con, "breaches/window_kpis_as_of", **params):
        enough = int(r["offered"]) >= int(r["min_calls"])
        window = label[int(r["width_s"])]
        for kpi in definitions.rolling():
            yield from _evaluation(r, kpi, window, enough)
    for r in sqlfiles.dicts(con, "breaches/oldest_wait_as_of", **params, orphan_s=orphan_s):
        for kpi in definitions.live():
            yield from _evaluation(r, kpi, LIVE)
    for r in sqlfiles.dicts(con, "breaches/quality_as_of", **params):
        enough = int(r["calls"]) >= int(r["min_calls"])
        for kpi in definitions.QUALITY_KPIS:
            yield from _evaluation(r, kpi, label[int(r["width_s"])], enough)


def _evaluation(r: dict[str, Any], kpi: definitions.Kpi, window: str, enough: bool = True) -> Iterator[Evaluation]:
    """The evaluation of ``kpi`` in one as-of row (columns ``<value>`` and ``target_<target>``), if defined."""
    if r[kpi.value] is not None:
        yield Evaluation(
            r["queue"], kpi.name, window, r["m"], float(r[kpi.value]), float(r[f"target_{kpi.target}"]), enough
        )


class BreachDetector:
    """Evaluates the points the watermark passed and persists the book (one caller at a
    time, on the connection and thread that store the batches: see ``attach``)."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        windows: tuple[tuple[str, int], ...],
        hold_s: float,
        step_s: int = STEP_S,
        orphan_s: float | None = None,
    ) -> None:
        self.windows = windows
        self.step_s = step_s
        self.orphan_s = orphan_s  # the longest orphan_after: bounds the calls read per point
        self._widest_s = max((width for _, width in windows), default=0)
        sqlfiles.run(con, "breaches/tables")
        self.book = BreachBook(hold_s, _open_breaches(con))

    def run(self, con: duckdb.DuckDBPyConnection, max_points: int | None = None) -> int:
        """Re-decide from the earliest changed minute, if calls changed since the last run,
        then evaluate the new points (at most ``max_points``, oldest first); return how many.

        A point's result depends only on the calls stored when it is evaluated, and any
        call stored later takes evaluation back, so a partial catch-up leaves the
        breaches exactly as a complete one would, only later.
        """
        clock = sqlfiles.dicts(con, "breaches/clock")[0]
        if clock["changed_since"] is not None:
            clock = self._rewind(con, clock)
        first = None
        if clock["evaluated_to"] is None:
            row = sqlfiles.first(con, "breaches/first_offered")
            first = row[0] if row else None
        span = evaluation_points(first, clock["watermark"], clock["evaluated_to"], self.step_s)
        if span is None:
            return 0
        lo, hi = span
        if max_points is not None:
            hi = min(hi, lo + self.step_s * (max_points - 1))
        done = 0
        start = lo
        while start <= hi:
            if not self.book.open and hi - start >= self.step_s * CHUNK_POINTS:
                # Nothing open and a long way to go (a first run, a backfill of old data
                # far behind the rest): jump the points no call can give a value, where
                # the book would not move. Years between two days of data are not
                # evaluated minute by minute.
                row = sqlfiles.first(
                    con, "breaches/next_active_point", from_s=start, step=self.step_s, width_s=self._widest_s
                )
                nxt = hi + self.step_s if row is None or row[0] is None else int(row[0])
                if nxt > start:
                    skipped_to = min(nxt, hi + self.step_s) - self.step_s
                    sqlfiles.run(con, "breaches/set_clock", evaluated_to=datetime.fromtimestamp(skipped_to, tz=UTC))
                    done += (skipped_to - start) // self.step_s + 1
                    start = skipped_to + self.step_s
                    continue
            end = min(hi, start + self.step_s * (CHUNK_POINTS - 1))
            self._chunk(con, start, end)
            done += (end - start) // self.step_s + 1
            start = end + self.step_s
        return done

    def _chunk(self, con: duckdb.DuckDBPyConnection, first: int, last: int) -> None:
        by_point: dict[datetime, list[Evaluation]] = {}
        for ev in evaluations_as_of(con, first, last, self.windows, self.step_s, self.orphan_s):
            by_point.setdefault(ev.at, []).append(ev)
        changed: list[tuple[datetime, Breach]] = []
        for point in range(first, last + 1, self.step_s):
            at = datetime.fromtimestamp(point, tz=UTC)
            changed += [(at, b) for b in self.book.apply(at, by_point.get(at, ()))]
        try:
            with sqlfiles.transaction(con):
                if changed:
                    con.register("breach_changes", _frame(changed))
                    try:
                        sqlfiles.run(con, "breaches/save")
                    finally:
                        con.unregister("breach_changes")
                sqlfiles.run(con, "breaches/set_clock", evaluated_to=datetime.fromtimestamp(last, tz=UTC))
        except BaseException:
            self._reload(con)  # as stored
            raise

    def _rewind(self, con: duckdb.DuckDBPyConnection, clock: dict[str, Any]) -> dict[str, Any]:
        """Take evaluation back to the first point whose answer the changed calls may alter
        (an event at t changes the points from t on: the first at or after t) and the book
        to its state before it. Live events come after the last point decided, and then
        only the mark is taken: nothing decided is evaluated again."""
        point = first_point_at_or_after(clock["changed_since"], self.step_s)
        evaluated_to = clock["evaluated_to"]
        if evaluated_to is None or point > int(evaluated_to.timestamp()):
            sqlfiles.run(con, "breaches/take_changed_mark")
            return {**clock, "changed_since": None}
        try:
            with sqlfiles.transaction(con):
                sqlfiles.run(con, "breaches/rewind", point=datetime.fromtimestamp(point, tz=UTC), step=self.step_s)
        finally:
            self._reload(con)
        return sqlfiles.dicts(con, "breaches/clock")[0]

    def _reload(self, con: duckdb.DuckDBPyConnection) -> None:
        self.book = BreachBook(self.book.hold.total_seconds(), _open_breaches(con))


def _frame(changes: list[tuple[datetime, Breach]]) -> pa.Table:
    ts = pa.timestamp("us", tz="UTC")
    rows = [b for _, b in changes]
    return pa.table(
        {
            "decided_at": pa.array([at for at, _ in changes], ts),
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


def open_breach_keys(con: duckdb.DuckDBPyConnection) -> frozenset[Key]:
    """(queue, kpi, window) of every open breach, as stored (any connection)."""
    return frozenset((q, k, w) for q, k, w in sqlfiles.rows(con, "breaches/open_keys"))


class BreachListener:
    """Runs a detector after the engine's batches (at most every ``every_s`` seconds, a day
    of points at most each time) and to the watermark when the source runs dry. A
    failing run is logged and leaves the clock and the calls_changed mark as stored, so
    the next one decides the same minutes: ingestion never stops for it."""

    def __init__(
        self,
        detector: BreachDetector,
        con: duckdb.DuckDBPyConnection,
        every_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.detector = detector
        self.con = con
        self.every_s = every_s
        self.clock = clock
        self._last = float("-inf")

    def __call__(self, _result: BatchResult | None = None) -> None:
        now = self.clock()
        if now - self._last >= self.every_s:
            self._last = now
            self._run(CATCH_UP_POINTS)

    def drain(self) -> None:
        self._run(None)

    def _run(self, max_points: int | None) -> None:
        try:
            self.detector.run(self.con, max_points=max_points)
        except duckdb.Error as e:
            log.warning("breach evaluation failed (tried again after the next batch): %s", e)


def attach(engine: Engine, every_s: float = 1.0) -> BreachListener:
    """Decide breaches from the engine's stored calls after its batches, on its thread."""
    cfg = engine.config
    # a queue without settings of its own has the defaults
    orphan_s = max(s.orphan_after_s for s in (cfg.defaults, *cfg.queues.values()))
    detector = BreachDetector(engine.store.con, cfg.windows, cfg.exporter.breach_hold_s, orphan_s=orphan_s)
    listener = BreachListener(detector, engine.store.con, every_s)
    engine.subscribe(listener, on_drain=listener.drain)
    return listener
