"""How far ahead of the clock a record may be (``[pipeline] max_future``), in normalize."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from pipeline.core.normalize import normalize
from pipeline.core.pii import CallerHasher
from pipeline.core.records import Parsed, RawBatch

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
HASHER = CallerHasher(b"unit-test-key")


def offered(call_id: str, ahead_s: float) -> Parsed:
    record = {"type": "call", "event": "offered", "call_id": call_id, "queue": "billing"}
    record["at"] = (NOW + timedelta(seconds=ahead_s)).isoformat()
    return Parsed(call_id, json.dumps(record), record)


def refused(now: datetime, max_future_s: float) -> dict[str, str]:
    batch = RawBatch.from_items("unit", [offered("c200", 200), offered("c400", 400), offered("c1y", 365 * 86400)])
    dead = normalize(batch, HASHER, now, max_future_s).dead
    return dict(zip(dead.get_column("position").to_list(), dead.get_column("reason").to_list(), strict=True))


def test_records_further_ahead_than_max_future_are_dead_lettered() -> None:
    why = "timestamp in the future (more than 300 s ahead of the clock): at"
    assert refused(NOW, 300.0) == {"c400": why, "c1y": why}


@pytest.mark.parametrize("max_future_s", [1e12, float("inf")])
def test_a_limit_past_the_largest_time_refuses_nothing(max_future_s: float) -> None:
    assert refused(NOW, max_future_s) == {}


def test_a_clock_without_a_time_zone_is_utc() -> None:
    assert refused(NOW.replace(tzinfo=None), 300.0) == refused(NOW, 300.0)
