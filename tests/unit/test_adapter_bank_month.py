"""The whole February 1999 bank month through the committed mapping, against an
independent count made here with polars directly on the TSV."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

import polars as pl
import pytest

from pipeline.core.records import DeadLetter, Parsed
from pipeline.ingest.adapters.mapped import read_mapped_file
from tests.support.shared import need, shared_file

BANK = shared_file("data", "anonymous-bank-1999-02.tsv")


@pytest.fixture(scope="module")
def month() -> tuple[list[Parsed | DeadLetter], Counter[str]]:
    items, stats = read_mapped_file(need(BANK), "anonymous_bank")
    return items, stats


@pytest.fixture(scope="module")
def independent() -> pl.DataFrame:
    """Calls as the README defines them, computed without the adapter."""
    df = pl.read_csv(BANK, separator="\t", infer_schema=False)
    queued = pl.col("q_start") != "0:00:00"
    return (
        df.filter(pl.col("outcome") != "PHANTOM")
        .filter((pl.col("outcome") == "AGENT") | queued)  # HANG before queuing is no queue call
        .with_columns(
            outcome=pl.when(pl.col("outcome") == "AGENT").then(pl.lit("answered")).otherwise(pl.lit("abandoned")),
            wait=pl.when(queued).then(pl.col("q_time").cast(pl.Int64)).otherwise(0),
        )
    )


def test_reads_cleanly(month: tuple) -> None:
    items, stats = month
    assert not [i for i in items if isinstance(i, DeadLetter)]
    assert stats["skipped:PHANTOM"] == 278
    assert stats["skipped:not offered"] == 1941


def test_counts_by_outcome_match_readme_and_independent_count(month: tuple, independent: pl.DataFrame) -> None:
    items, _ = month
    got = Counter(i.record["outcome"] for i in items)
    want = dict(independent.group_by("outcome").len().iter_rows())
    assert got == want == {"answered": 27_162, "abandoned": 3_963}


def test_counts_by_queue_and_outcome(month: tuple, independent: pl.DataFrame) -> None:
    items, _ = month
    got = Counter((i.record["queue"], i.record["outcome"]) for i in items)
    want = {(q, o): n for q, o, n in independent.group_by("type", "outcome").len().iter_rows()}
    assert got == want


def test_mean_queue_wait(month: tuple, independent: pl.DataFrame) -> None:
    items, _ = month

    def wait(r: dict) -> float:
        end = r["answered_at"] if r["outcome"] == "answered" else r["ended_at"]
        return (datetime.fromisoformat(end) - datetime.fromisoformat(r["offered_at"])).total_seconds()

    waits = [wait(i.record) for i in items]
    assert min(waits) >= 0
    assert sum(waits) / len(waits) == pytest.approx(independent["wait"].mean(), abs=1e-9)
    queued_answered = [wait(i.record) for i in items if i.record["outcome"] == "answered" and wait(i.record) > 0]
    assert len(queued_answered) <= 27_162 - 13_067


def test_call_ids_unique_and_agents_callers_absent_as_documented(month: tuple) -> None:
    items, _ = month
    records = [i.record for i in items]
    assert len({r["call_id"] for r in records}) == len(records)
    assert sum(1 for r in records if r["outcome"] == "answered" and "agent_id" not in r) == 491
    assert all(r.get("caller") != "0" for r in records)
