"""The window KPIs the breach detector evaluates at each point (sql/breaches/window_kpis_as_of.sql)
equal a naive count: for each point m, width and queue, every stored call offered in
(m - width, m], each with the outcome it had at m, counted one by one in Python.

The calls are a simulated day plus calls placed on the edges: offered, answered or
abandoned exactly at a point or a microsecond beside it, offered exactly a window before a
point, abandoned and later answered, answered before its offer, and still waiting."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

import pytest

from metrics.kpi import breaches
from pipeline.core import sqlfiles
from pipeline.core.engine import Engine
from pipeline.ingest.sources.simulator import SimConfig, simulate
from tests import helpers

STEP_S = 60
WIDTHS = (300, 900, 3600)
US = timedelta(microseconds=1)
# A minute boundary inside the simulated day (09:00-12:00 local, UTC+8: 01:00-04:00 UTC).
P = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Call:
    queue: str
    offered_at: datetime
    answered_at: datetime | None
    abandoned_at: datetime | None


@dataclass(frozen=True)
class Settings:
    sl_threshold_s: float
    sl_formula: str
    short_abandon_s: float
    min_calls: int


EDGES = [  # (offered, answered, abandoned), relative to P
    (timedelta(0), timedelta(seconds=60), None),
    (timedelta(seconds=-900), timedelta(seconds=-890), None),
    (timedelta(seconds=-900) + US, timedelta(seconds=-880), None),
    (timedelta(seconds=-3600), None, timedelta(seconds=-3590)),
    (timedelta(seconds=-3600) + US, None, timedelta(seconds=-3000)),
    (timedelta(seconds=-10), timedelta(0) + US, None),
    (timedelta(seconds=-10), timedelta(0), None),
    (timedelta(seconds=-20), None, timedelta(0)),
    (timedelta(seconds=-20), None, timedelta(seconds=-60) - US),
    (timedelta(seconds=-30), timedelta(seconds=120), timedelta(seconds=30)),  # abandoned, then answered
    (timedelta(seconds=5), timedelta(seconds=1), None),  # answered before its offer
    (timedelta(seconds=-300), None, None),  # still waiting
    (timedelta(seconds=-5000), timedelta(seconds=-4990), None),  # before every window
    (timedelta(seconds=125), timedelta(seconds=125) + timedelta(seconds=29, microseconds=999999), None),
]


@pytest.fixture(scope="module")
def eng() -> Engine:
    eng = helpers.engine()
    helpers.feed(eng, list(simulate(SimConfig(seed=7, open_time=time(9, 0), close_time=time(12, 0)))))
    con = eng.store.con
    for i, (off, ans, ab) in enumerate(EDGES):
        for queue in ("billing", "sales"):
            con.execute(
                "INSERT INTO call_state (call_id, queue, offered_at, answered_at, abandoned_at) VALUES (?, ?, ?, ?, ?)",
                [
                    f"edge-{i}-{queue}",
                    queue,
                    P + off,
                    None if ans is None else P + ans,
                    None if ab is None else P + ab,
                ],
            )
    return eng


def _calls(eng: Engine) -> list[Call]:
    rows = eng.store.con.execute(
        "SELECT queue, offered_at, answered_at, abandoned_at FROM call_state WHERE offered_at IS NOT NULL"
    ).fetchall()
    return [Call(*r) for r in rows]


def _settings(eng: Engine) -> dict[str, Settings]:
    rows = eng.store.con.execute(
        "SELECT queue, sl_threshold_s, sl_formula, short_abandon_s, min_calls FROM queue_settings"
    ).fetchall()
    return {r[0]: Settings(*r[1:]) for r in rows}


def _us(a: datetime, b: datetime) -> int:
    return (b - a) // US


def _naive(calls: list[Call], settings: dict[str, Settings], first: int, last: int) -> list[tuple[object, ...]]:
    """(m, queue, width, offered, service level, abandon rate, ASA) for each point with a call."""
    out = []
    for point in range(first, last + 1, STEP_S):
        m = datetime.fromtimestamp(point, tz=UTC)
        for queue in sorted(settings):
            s = settings[queue]
            for width in WIDTHS:
                offered = answered = abandoned = short = answered_in_sl = abandoned_in_sl = wait_us = 0
                for c in calls:
                    if c.queue != queue or not (m - timedelta(seconds=width) < c.offered_at <= m):
                        continue
                    offered += 1
                    if c.answered_at is not None and c.answered_at <= m:
                        answered += 1
                        us = _us(c.offered_at, c.answered_at)
                        wait_us += us
                        answered_in_sl += us / 1e6 <= s.sl_threshold_s
                    elif c.abandoned_at is not None and c.abandoned_at <= m:
                        abandoned += 1
                        wait = _us(c.offered_at, c.abandoned_at) / 1e6
                        short += wait < s.short_abandon_s
                        abandoned_in_sl += s.short_abandon_s <= wait <= s.sl_threshold_s
                if offered == 0:
                    continue
                sl = {
                    "negative": (answered_in_sl, offered - short),
                    "without_abandons": (answered_in_sl, offered - short - abandoned_in_sl),
                    "positive": (answered_in_sl + abandoned_in_sl, offered - short),
                    "answered_only": (answered_in_sl, answered),
                }[s.sl_formula]
                out.append(
                    (
                        m,
                        queue,
                        width,
                        offered,
                        sl[0] / sl[1] if sl[1] > 0 else None,
                        (abandoned - short) / (offered - short) if offered > short else None,
                        wait_us / 1e6 / answered if answered else None,
                    )
                )
    return out


def _close(a: tuple[object, ...], b: tuple[object, ...]) -> bool:
    return all(
        x is y or (isinstance(x, float) and isinstance(y, float) and math.isclose(x, y, rel_tol=1e-12))
        for x, y in zip(a, b, strict=True)
    )


def _sql(eng: Engine, first: int, last: int) -> list[tuple[object, ...]]:
    rows = sqlfiles.dicts(
        eng.store.con, "breaches/window_kpis_as_of", first=first, last=last, step=STEP_S, widths=list(WIDTHS)
    )
    return [
        (r["m"], r["queue"], r["width_s"], r["offered"], r["service_level"], r["abandon_rate"], r["asa_s"])
        for r in rows
    ]


@pytest.mark.parametrize(
    ("first", "last"),
    [
        (P - timedelta(minutes=2), P + timedelta(minutes=10)),  # the edges, each side of P
        (P, P),  # one point
        (P + timedelta(minutes=1), P + timedelta(minutes=1)),
        (P - timedelta(hours=3), P - timedelta(minutes=50)),  # from before the day's first call
        (P + timedelta(minutes=30), P + timedelta(hours=3)),  # past its last
    ],
)
def test_window_kpis_as_of_each_point_equal_a_naive_count(eng: Engine, first: datetime, last: datetime) -> None:
    lo, hi = int(first.timestamp()), int(last.timestamp())
    expected = _naive(_calls(eng), _settings(eng), lo, hi)
    got = _sql(eng, lo, hi)
    assert len(expected) > 0
    assert [r[:4] for r in got] == [r[:4] for r in expected]
    for g, e in zip(got, expected, strict=True):
        assert _close(g[4:], e[4:]), (g, e)


def test_no_point_no_row(eng: Engine) -> None:
    lo = int(P.timestamp())
    assert _naive(_calls(eng), _settings(eng), lo, lo - 30) == []
    assert _sql(eng, lo, lo - 30) == []
    assert _sql(eng, lo, lo - 60) == []


def test_the_detector_reads_the_same_evaluations(eng: Engine) -> None:
    # evaluations_as_of is what BreachDetector applies: it carries the SQL's values through.
    lo = int((P - timedelta(minutes=2)).timestamp())
    hi = int((P + timedelta(minutes=3)).timestamp())
    windows = tuple((f"{w}s", w) for w in WIDTHS)
    evs = [e for e in breaches.evaluations_as_of(eng.store.con, lo, hi, windows) if e.kpi == "abandon_rate"]
    expected = {(r[0], r[1], f"{r[2]}s"): r[5] for r in _naive(_calls(eng), _settings(eng), lo, hi) if r[5] is not None}
    got = {(e.at, e.queue, e.window): e.value for e in evs}
    assert got.keys() == expected.keys()
    assert all(math.isclose(got[k], v, rel_tol=1e-12) for k, v in expected.items())
