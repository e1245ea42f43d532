"""Breaches and KPIs are a pure function of the data: however the partitions of a mixed
input (live events and CDRs of the same calls, CDR-only calls, re-deliveries, transfers,
three time zones, waits on the thresholds) interleave and however the stream is cut into
batches, the ``breaches`` rows and the KPI tables are exactly (bit for bit) those of a
replay of the file.

The replay's breaches are checked against the KPI values they were decided on: every
breach opened on a value past its target, and the input has breaches to compare.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metrics.kpi import breaches
from pipeline.core.engine import Engine
from tests import helpers
from tests.support.mixed import mixed_records, partitions

TABLES = {
    "breaches": 'SELECT queue, kpi, "window", target, value, worst_value, opened_at, closed_at FROM breaches ORDER BY ALL',
    "kpi_queue_interval": "SELECT * FROM kpi_queue_interval ORDER BY ALL",
    "kpi_agent_interval": "SELECT * FROM kpi_agent_interval ORDER BY ALL",
    "calls": "SELECT * FROM calls ORDER BY call_id, queue",
}


@pytest.fixture(scope="module")
def records() -> list[dict[str, Any]]:
    return mixed_records()


@pytest.fixture(scope="module")
def replayed(records: list[dict[str, Any]]) -> dict[str, list[tuple[Any, ...]]]:
    eng = helpers.engine()
    breaches.attach(eng)
    eng.process_all(helpers.batch(records[i : i + 2000], "file:mixed.jsonl", i) for i in range(0, len(records), 2000))
    return _tables(eng)


def _tables(eng: Engine) -> dict[str, list[tuple[Any, ...]]]:
    return {name: [tuple(r) for r in eng.store.con.execute(sql).fetchall()] for name, sql in TABLES.items()}


def test_the_replay_has_breaches_on_values_past_their_targets(replayed: dict[str, list[tuple[Any, ...]]]) -> None:
    rows = replayed["breaches"]
    kpis = {r[1] for r in rows}
    assert {"service_level", "abandon_rate"} <= kpis, rows
    for _queue, kpi, _window, target, value, worst, _opened, _closed in rows:
        if kpi == "service_level":
            assert worst <= value < target
        else:
            assert worst >= value > target


@st.composite
def arrivals(draw: st.DrawFn, parts: list[list[dict[str, Any]]]) -> list[list[dict[str, Any]]]:
    """One interleaving of the partitions (each keeps its order; one may lag far behind the
    others), cut into batches of any size."""
    lengths = [len(p) for p in parts]
    # A partition's weight sets how fast it is read: a weight near 0 is a partition
    # left behind, caught up at the end.
    weights = draw(st.lists(st.integers(1, 20), min_size=len(parts), max_size=len(parts)))
    seed = draw(st.integers(0, 2**32 - 1))
    import random

    rng = random.Random(seed)
    pos = [0] * len(parts)
    order: list[dict[str, Any]] = []
    while any(p < n for p, n in zip(pos, lengths, strict=True)):
        live = [i for i, (p, n) in enumerate(zip(pos, lengths, strict=True)) if p < n]
        i = rng.choices(live, [weights[j] for j in live])[0]
        take = rng.randint(1, 60)
        order += parts[i][pos[i] : pos[i] + take]
        pos[i] = min(lengths[i], pos[i] + take)
    cuts = sorted(set(draw(st.lists(st.integers(1, len(order) - 1), min_size=1, max_size=25))))
    bounds = [0, *cuts, len(order)]
    return [order[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_interleaving_and_batching_equals_the_replay(
    records: list[dict[str, Any]], replayed: dict[str, list[tuple[Any, ...]]], data: st.DataObject
) -> None:
    batches = data.draw(arrivals(partitions(records)))
    eng = helpers.engine()
    breaches.attach(eng, every_s=0)  # decide after every batch: the most re-deciding
    start = 0
    for records_in in batches:
        eng.process(helpers.batch(records_in, "kafka", start))
        start += len(records_in)
    eng.drain()
    got = _tables(eng)
    eng.close()
    for name in TABLES:
        assert got[name] == replayed[name], name
