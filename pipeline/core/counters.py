"""The counters callpulse exports, kept in DuckDB and updated by the batches that change them.

A Prometheus counter must never go down. A recount of the stored data under today's
settings would: a lower service-level threshold, retention, or a restart (the process's
own totals start again at 0) would all make one smaller. So each counter is a stored
count (``queue_counters``, ``queue_wait_buckets``, ``pipeline_counters`` in sql/schema/tables.sql),
added to in the transaction of the batch that decided it, and a restart continues from
there. A count is decided when it happens and is never revised: a call counts as answered
within the service level if its wait was within the threshold in force when its answer
(or its offer, whichever arrived last) was stored; a later threshold change or a late
event that moves its offer time changes the KPIs but not what was counted.

Labels are bounded before anything is stored: the source's kind (``file``, ``kafka``)
and the dead-letter reason's prefix, so a worker replaying many files keeps a few rows.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping

import duckdb

from pipeline.core import sqlfiles

# Answer-wait histogram bounds (seconds); every configured service-level threshold is
# added, and a bound once used stays (its bucket keeps counting after a threshold change).
WAIT_BUCKETS: tuple[float, ...] = (5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600)

# Quality histogram bounds: MOS (1-5) and jitter in seconds (30 ms: the default poor line).
QUALITY_MOS_BUCKETS: tuple[float, ...] = (1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.3, 4.5)
QUALITY_JITTER_BUCKETS_S: tuple[float, ...] = (0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2)

INGESTED = "ingested"
DUPLICATES = "duplicates"
DEAD_LETTERS = "dead_letters"
REFRESH_FAILURES = "refresh_failures"  # source: the job's name


def add_quality(con: duckdb.DuckDBPyConnection) -> None:
    """Count the quality records the batch made countable (inside the batch's transaction;
    new_quality and touched_calls registered)."""
    sqlfiles.run(
        con,
        "ingest/add_quality_counters",
        mos_bounds=list(QUALITY_MOS_BUCKETS),
        jitter_bounds_s=list(QUALITY_JITTER_BUCKETS_S),
    )


def wait_bounds(thresholds: Iterable[float]) -> tuple[float, ...]:
    """The wait histogram's bucket bounds: the standard set with every threshold added."""
    return tuple(sorted({float(b) for b in WAIT_BUCKETS} | {float(t) for t in thresholds if t > 0}))


_WORD = re.compile(r"[^a-z0-9]+")


def source_kind(source: str) -> str:
    """Bounded ``source`` label: ``file:/x/y.jsonl`` -> ``file``, ``kafka:t`` -> ``kafka``."""
    kind = _WORD.sub("_", source.split(":", 1)[0].lower()).strip("_")[:32]
    return kind or "unknown"


def reason_label(reason: str) -> str:
    """Bounded ``reason`` label: the reason's prefix without details or numbers.

    ``missing field: queue`` -> ``missing_field``; ``timestamp in the future (more
    than 300 s ahead ...)`` -> ``timestamp_in_the_future``.
    """
    head = re.sub(r"\(.*", "", reason.split(":", 1)[0].lower())
    label = _WORD.sub("_", re.sub(r"\d+", " ", head)).strip("_")[:40].strip("_")
    return label or "other"


def add_batch(
    con: duckdb.DuckDBPyConnection,
    source: str,
    accepted: int,
    duplicates: int,
    dead_reasons: Iterable[str],
) -> None:
    """Add one batch's records to the pipeline counters (inside the batch's transaction)."""
    kind = source_kind(source)
    rows: Counter[tuple[str, str, str]] = Counter()
    if accepted:
        rows[(INGESTED, kind, "")] += accepted
    if duplicates:
        rows[(DUPLICATES, kind, "")] += duplicates
    for reason in dead_reasons:
        rows[(DEAD_LETTERS, kind, reason_label(reason))] += 1
    if rows:
        keys = sorted(rows)
        sqlfiles.run(
            con,
            "ingest/add_pipeline_counters",
            metrics=[k[0] for k in keys],
            sources=[k[1] for k in keys],
            reasons=[k[2] for k in keys],
            values=[rows[k] for k in keys],
        )


def keep_at_least(con: duckdb.DuckDBPyConnection, metric: str, counts: Mapping[str, int]) -> None:
    """Store counts a process keeps itself (refresh failures by job), never lowering one."""
    keys = sorted(counts)
    sqlfiles.run(con, "export/keep_counts_at_least", metric=metric, sources=keys, values=[counts[k] for k in keys])


def pipeline_counts(con: duckdb.DuckDBPyConnection) -> Mapping[str, dict[tuple[str, str], int]]:
    """The stored pipeline counters: metric -> (source kind, reason) -> count."""
    out: dict[str, dict[tuple[str, str], int]] = {INGESTED: {}, DUPLICATES: {}, DEAD_LETTERS: {}}
    for metric, source, reason, value in sqlfiles.rows(con, "export/pipeline_counters"):
        out.setdefault(metric, {})[(source, reason)] = int(value)
    return out
