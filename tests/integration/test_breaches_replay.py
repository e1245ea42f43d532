"""Breaches are made in event time: a live run in many small batches (with a restart
half-way) writes exactly the breaches table that a replay of the same day in one big
batch writes. The simulated day has one understaffed hour on one queue."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from metrics.kpi import breaches
from metrics.kpi.breaches import BreachDetector
from pipeline.core.engine import Engine
from pipeline.ingest.sources.simulator import SimConfig, Understaffing, simulate
from tests import helpers

QUEUE = "billing"
# A day cut short at 15:30 (enough for the hour to recover) keeps the test quick.
SIM = SimConfig(
    seed=3,
    close_time=time(15, 30),
    understaffing=(Understaffing(QUEUE, time(13, 0), time(14, 0), 0.6),),
)
BREACH_ROWS = (
    'SELECT queue, kpi, "window", target, value, worst_value, opened_at, closed_at '
    'FROM breaches ORDER BY queue, kpi, "window", opened_at'
)


@pytest.fixture(scope="module")
def day() -> list[dict[str, Any]]:
    return list(simulate(SIM))


def _detect(eng: Engine) -> BreachDetector:
    cfg = eng.config
    detector = BreachDetector(eng.store.con, cfg.windows, cfg.exporter.breach_hold_s)

    def after_batch(_result: object) -> None:
        detector.run(eng.store.con)

    eng.subscribe(after_batch)
    return detector


def _rows(eng: Engine) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in eng.store.con.execute(BREACH_ROWS).fetchall()]


def _small_batches(records: list[dict[str, Any]], seed: int) -> list[list[dict[str, Any]]]:
    """Uneven batches of 50-1200 records, in arrival (event-time) order."""
    rng = random.Random(seed)
    out, i = [], 0
    while i < len(records):
        n = rng.randint(50, 1200)
        out.append(records[i : i + n])
        i += n
    return out


def test_live_in_small_batches_equals_replay_in_one_batch(day: list[dict[str, Any]], tmp_path: Path) -> None:
    replay = helpers.engine()
    _detect(replay)
    replay.process(helpers.batch(day, "file:day.jsonl"))
    expected = _rows(replay)
    replay_clock = replay.store.con.execute("SELECT evaluated_to FROM breach_clock").fetchall()

    batches = _small_batches(day, seed=11)
    half = len(batches) // 2
    db = tmp_path / "live.duckdb"
    start = 0
    for part in (batches[:half], batches[half:]):  # a restart half-way through the day
        live = helpers.engine(db)
        _detect(live)
        for records in part:
            live.process(helpers.batch(records, "simulator", start))
            start += len(records)
        got = _rows(live)
        live_clock = live.store.con.execute("SELECT evaluated_to FROM breach_clock").fetchall()
        live.close()

    assert len(batches) > 40
    assert got == expected
    assert live_clock == replay_clock

    # The understaffed hour shows as a service-level breach of that queue, opened in
    # that hour (event time) and closed after it.
    tz = ZoneInfo(SIM.tz)
    start_t = datetime.combine(SIM.day, time(13, 0), tzinfo=tz).astimezone(UTC)
    end_t = datetime.combine(SIM.day, time(14, 0), tzinfo=tz).astimezone(UTC)
    hour = [
        r for r in expected if r[0] == QUEUE and r[1] == "service_level" and r[2] == "15m" and start_t <= r[6] <= end_t
    ]
    assert hour, f"no 15m service-level breach of {QUEUE} in the understaffed hour: {expected}"
    for r in hour:
        assert r[5] <= r[4] < r[3]  # worst <= value when opened < target
        assert r[7] is not None and r[7] > r[6]


def test_replay_twice_changes_nothing(day: list[dict[str, Any]]) -> None:
    eng = helpers.engine()
    _detect(eng)
    eng.process(helpers.batch(day[:20000], "file:day.jsonl"))
    first = _rows(eng)
    eng.process(helpers.batch(day[:20000], "file:day.jsonl"))  # all duplicates
    assert _rows(eng) == first


def test_catching_up_in_steps_equals_one_run(day: list[dict[str, Any]]) -> None:
    records = day[:25000]
    whole = helpers.engine()
    _detect(whole)
    whole.process(helpers.batch(records, "file:day.jsonl"))

    steps = helpers.engine()
    steps.process(helpers.batch(records, "file:day.jsonl"))
    cfg = steps.config
    detector = BreachDetector(steps.store.con, cfg.windows, cfg.exporter.breach_hold_s)
    calls = 0
    while detector.run(steps.store.con, max_points=37):
        calls += 1
    assert calls > 3
    assert _rows(steps) == _rows(whole)
    assert detector.book.open_keys() == frozenset((r[0], r[1], r[2]) for r in _rows(whole) if r[7] is None)


def test_a_backfill_years_behind_is_decided_without_walking_the_gap(
    day: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A day from two years earlier stored after today's: both days' breaches are those
    each day gives alone, and only the minutes near calls are evaluated, not the million
    minutes between the two days."""
    old_day = list(simulate(replace(SIM, day=date(2024, 3, 4))))
    expected = []
    for records in (old_day, day):
        alone = helpers.engine()
        _detect(alone)
        alone.process(helpers.batch(records, "file:day.jsonl"))
        expected += _rows(alone)
    assert expected, "the understaffed hour should open breaches"

    evaluated: list[int] = []
    real = breaches.evaluations_as_of

    def counting(con: Any, first: int, last: int, *args: Any, **kwargs: Any) -> Any:
        evaluated.append((last - first) // breaches.STEP_S + 1)
        return real(con, first, last, *args, **kwargs)

    monkeypatch.setattr(breaches, "evaluations_as_of", counting)
    both = helpers.engine()
    _detect(both)
    both.process(helpers.batch(day, "file:today.jsonl"))
    both.process(helpers.batch(old_day, "file:backfill.jsonl"))
    assert sorted(_rows(both), key=repr) == sorted(expected, key=repr)
    # Each day is evaluated at most twice (once alone, once after the rewind), plus a chunk
    # of slack at each edge; the gap between the days is ~1,050,000 minutes.
    assert sum(evaluated) < 2 * 2 * 24 * 60 + 4 * breaches.CHUNK_POINTS, sum(evaluated)


def _call_at(call_id: str, at: str) -> dict[str, Any]:
    return {"type": "call", "event": "offered", "call_id": call_id, "queue": QUEUE, "at": f"2026-03-02T09:{at}Z"}


def test_live_events_after_the_last_point_decided_take_nothing_back(monkeypatch: pytest.MonkeyPatch) -> None:
    # An event at t changes the points at or after t: one between the last point decided and
    # the watermark evaluates nothing again; one exactly on a decided point re-decides from it.
    evaluated: list[tuple[int, int]] = []
    real = breaches.evaluations_as_of

    def counting(con: Any, first: int, last: int, *args: Any, **kwargs: Any) -> Any:
        evaluated.append((first, last))
        return real(con, first, last, *args, **kwargs)

    monkeypatch.setattr(breaches, "evaluations_as_of", counting)
    eng = helpers.engine()
    _detect(eng)
    minute = int(datetime(2026, 3, 2, 9, 0, tzinfo=UTC).timestamp())
    eng.process(helpers.batch([_call_at(f"a{i}", f"0{i}:00") for i in range(5)] + [_call_at("a5", "04:30")]))
    assert evaluated == [(minute, minute + 4 * 60)]  # 09:00-09:04, strictly before the watermark 09:04:30
    evaluated.clear()
    eng.process(helpers.batch([_call_at("b1", "04:40"), _call_at("b2", "04:50")], start=6))
    assert evaluated == []
    eng.process(helpers.batch([_call_at("c1", "03:00")], start=8))  # late, on the decided point 09:03
    assert evaluated == [(minute + 3 * 60, minute + 4 * 60)]
    assert eng.store.con.execute("SELECT count(*) FROM calls_changed").fetchone() == (0,)


def test_first_point_at_or_after_counts_microseconds() -> None:
    point = datetime(2026, 3, 2, 9, 3, tzinfo=UTC)
    at = int(point.timestamp())
    us = timedelta(microseconds=1)
    assert breaches.first_point_at_or_after(point) == at
    assert breaches.first_point_at_or_after(point + us) == at + 60
    assert breaches.first_point_at_or_after(point - us) == at
    assert breaches.first_point_at_or_after(point - timedelta(seconds=60)) == at - 60
