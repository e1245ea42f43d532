"""Small helpers shared by tests: build an engine on a fresh database, feed records."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from pipeline.core.config import Config
from pipeline.core.engine import Engine
from pipeline.core.records import Parsed, RawBatch

PII_KEY = b"test-key-not-secret"
# A fixed wall clock for tests: later than every test event, so nothing is "in the future".
CLOCK = datetime(2026, 6, 1, tzinfo=UTC)


def engine(db: Path | str = ":memory:", config: Config | None = None) -> Engine:
    return Engine.open(config or Config(), PII_KEY, db=db, clock=lambda: CLOCK)


def batch(records: list[dict[str, Any]], source: str = "test", start: int = 0) -> RawBatch:
    return RawBatch.from_items(source, [Parsed(str(start + i), json.dumps(r), r) for i, r in enumerate(records)])


def feed(eng: Engine, records: list[dict[str, Any]], source: str = "test") -> None:
    eng.process(batch(records, source))


def offered(call_id: str, minute: int, queue: str = "billing") -> dict[str, Any]:
    """A native ``offered`` call event at 09:<minute> on 2026-03-02 (UTC)."""
    return {
        "type": "call",
        "event": "offered",
        "call_id": call_id,
        "queue": queue,
        "at": f"2026-03-02T09:{minute:02d}:00Z",
    }


def frame(eng: Engine, sql: str, params: list[Any] | None = None) -> pl.DataFrame:
    out = pl.from_arrow(eng.store.con.sql(sql, params=params).to_arrow_table())
    assert isinstance(out, pl.DataFrame)
    return out


def one(eng: Engine, sql: str, params: list[Any] | None = None) -> dict[str, Any]:
    rows = frame(eng, sql, params).to_dicts()
    assert len(rows) == 1, f"expected one row, got {len(rows)}: {rows}"
    return rows[0]
