"""The records that cross module boundaries.

Sources hand the engine raw records (native JSON-lines fields, see DESIGN.md) as
plain ``dict``s or as a frame of strings; adapters for other formats map onto the
same fields. Anything a source or adapter cannot turn into a record becomes a
``DeadLetter`` and travels with the batch, so nothing is lost on the way in.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import polars as pl

# Every field a native record may carry, in one place. Values arrive as JSON
# scalars or strings; validation (pipeline.core.normalize) types them.
NATIVE_FIELDS: tuple[str, ...] = (
    "type",
    "event",
    "call_id",
    "queue",
    "at",
    "agent_id",
    "caller",
    "talk_s",
    "hold_s",
    "wrap_s",
    "case_id",
    "category",
    "resolved",
    "offered_at",
    "answered_at",
    "ended_at",
    "outcome",
    "transferred",
    "state",
    "reason",
    "queues",
    "score",
    "evaluator",
    "leg",
    "direction",
    "mos",
    "r_factor",
    "jitter_ms",
    "loss_pct",
    "rtt_ms",
    "vendor_score",
    "vendor_score_kind",
    "trunk",
    "tags",
)

# The fields of a `cdr` record (DESIGN.md, Inputs), required ones first.
CDR_FIELDS: tuple[str, ...] = (
    *("call_id", "queue", "offered_at", "ended_at", "answered_at", "outcome", "agent_id", "caller"),
    *("talk_s", "hold_s", "wrap_s", "transferred", "case_id", "category", "resolved"),
)

RECORD_TYPES: tuple[str, ...] = ("call", "cdr", "agent", "qa", "quality")
CALL_EVENTS: tuple[str, ...] = ("offered", "answered", "abandoned", "exited", "ended", "transferred")
AGENT_STATES: tuple[str, ...] = ("login", "logout", "ready", "not_ready", "busy", "wrap")
LOGGED_IN_STATES: tuple[str, ...] = tuple(s for s in AGENT_STATES if s != "logout")
WORK_STATES: tuple[str, ...] = ("ready", "busy", "wrap", "not_ready")
"""The states whose time is accounted (occupancy, not-ready time), in the boards' order.
The SQL repeats this list; tests/unit/test_agent_states.py checks it agrees."""
OUTCOMES: tuple[str, ...] = ("answered", "abandoned", "exited")
QUALITY_DIRECTIONS: tuple[str, ...] = ("in", "out")
"""A quality record's media direction as the phone system sees it: ``in`` received, ``out`` sent."""
QUALITY_MEASURES: tuple[str, ...] = ("mos", "r_factor", "jitter_ms", "loss_pct", "rtt_ms", "vendor_score")


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A record that could not be used: its raw text, where it came from, and why.

    ``raw`` must never hold a caller number in the clear: whoever builds a dead
    letter from a parsed record replaces the caller with its keyed hash first.
    """

    source: str
    position: str
    raw: str
    reason: str


@dataclass(frozen=True, slots=True)
class AgentMemory:
    """What a stateful adapter (Asterisk queue_log) remembers of one agent between lines,
    which the events it emitted do not say: the queues it is a member of, the calls it is
    on, a pause taken during a call, the last state it emitted."""

    agent_id: str
    queues: tuple[str, ...] = ()
    calls: tuple[str, ...] = ()
    paused: bool = False
    reason: str | None = None
    last_state: str | None = None
    last_reason: str | None = None


@dataclass(frozen=True, slots=True)
class AdapterMemory:
    """A stateful adapter's agents as of a source partition's offset in the same batch:
    stored with that offset, so a restart continues with the state the offset implies."""

    source: str
    partition: int
    agents: tuple[AgentMemory, ...] = ()


@dataclass(frozen=True, slots=True)
class SourceOffset:
    """How far a source has been read: stored with the rows it produced."""

    source: str
    partition: int
    offset: int
    # The partition's high watermark (next offset to be written) when the batch was fetched:
    # stored with the offset, it gives the lag the exporter shows. None: not known.
    high_watermark: int | None = None


@dataclass(frozen=True, slots=True)
class Parsed:
    """A native record an adapter made, with where it came from and its raw text."""

    position: str
    raw: str
    record: dict[str, Any]


@dataclass(slots=True)
class RawBatch:
    """One batch from a source, before validation.

    ``frame`` has one String column per native field (missing ones null) plus
    ``_pos`` (line number, ``topic:partition:offset``, ...) and ``_raw`` (the text
    the record came from, kept for dead letters). ``dead`` holds what the source
    or adapter already could not read; ``offsets`` how far the source got, and
    ``memory`` a stateful adapter's state at those offsets (stored with them).
    """

    source: str
    frame: pl.DataFrame
    dead: list[DeadLetter] = field(default_factory=list)
    offsets: list[SourceOffset] = field(default_factory=list)
    memory: list[AdapterMemory] = field(default_factory=list)

    @property
    def size(self) -> int:
        """Records read, usable or not."""
        return self.frame.height + len(self.dead)

    @classmethod
    def concat(cls, batches: list[RawBatch]) -> RawBatch:
        """Several batches as one (one transaction, one KPI refresh); each row keeps its
        source in a ``_src`` column, dead letters and offsets keep theirs."""
        if len(batches) == 1:
            return batches[0]

        def tagged(b: RawBatch) -> pl.DataFrame:
            return b.frame if "_src" in b.frame.columns else b.frame.with_columns(pl.lit(b.source).alias("_src"))

        frames = [tagged(b) for b in batches]
        return cls(
            source=",".join(dict.fromkeys(b.source for b in batches)),
            frame=pl.concat(frames, how="vertical"),
            dead=[d for b in batches for d in b.dead],
            offsets=[o for b in batches for o in b.offsets],
            memory=[m for b in batches for m in b.memory],
        )

    @classmethod
    def from_items(
        cls,
        source: str,
        items: Iterable[Parsed | DeadLetter],
        offsets: list[SourceOffset] | None = None,
        memory: list[AdapterMemory] | None = None,
    ) -> RawBatch:
        """Build a batch from adapter output (records as dicts of JSON values)."""
        records: list[Parsed] = []
        dead: list[DeadLetter] = []
        for item in items:
            (dead if isinstance(item, DeadLetter) else records).append(item)  # type: ignore[arg-type]
        columns: dict[str, list[str | None]] = {name: [] for name in NATIVE_FIELDS}
        for parsed in records:
            for name in NATIVE_FIELDS:
                columns[name].append(_as_text(parsed.record.get(name)))
        columns["_pos"] = [p.position for p in records]
        columns["_raw"] = [p.raw for p in records]
        frame = pl.DataFrame(columns, schema={name: pl.String for name in columns})
        return cls(source=source, frame=frame, dead=dead, offsets=offsets or [], memory=memory or [])


RAW_SCHEMA: dict[str, pl.DataType] = {name: pl.String() for name in NATIVE_FIELDS}


def _as_text(value: Any) -> str | None:
    """A JSON value as the text the JSON-lines reader would have produced."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(value, separators=(",", ":"))
