"""Pipeline-health board: throughput, duplicates, dead letters, watermark lag (the data's age), batch
time, Kafka lag and stored offsets per partition, refresh failures."""

from __future__ import annotations

from typing import Any

from dashboards.panels import (
    GREEN,
    RED,
    Grid,
    big_stat,
    dashboard,
    m,
    query,
    sel,
    series_panel,
    thresholds,
)
from metrics.export import names as n
from pipeline.core.config import Config

UID = "callpulse-pipeline"
RATE = "[$__rate_interval]"


def _quantile(q: float) -> str:
    return f"histogram_quantile({q}, sum by (le) (rate({m(n.BATCH_DURATION, '_bucket')}{RATE})))"


def _dead_letters_1h() -> str:
    """Dead letters in the last hour; 0 (not "no data") while there has been none: the
    exporter has no dead-letter series until the first one, so fall back to the
    ingest counter times zero."""
    return f"sum(increase({m(n.DEAD_LETTERS_TOTAL)}[1h])) or sum(increase({m(n.EVENTS_INGESTED_TOTAL)}[1h])) * 0"


def _dead_letter_rate() -> str:
    """Dead letters per second by source and reason; a 0 line per source while none."""
    return (
        f"sum by (source, reason) (rate({m(n.DEAD_LETTERS_TOTAL)}{RATE})) "
        f"or sum by (source) (rate({m(n.EVENTS_INGESTED_TOTAL)}{RATE})) * 0"
    )


def build(config: Config | None = None) -> dict[str, Any]:
    del config
    grid = Grid()
    ingest_rate = f"sum(rate({m(n.EVENTS_INGESTED_TOTAL)}{RATE}))"
    grid.place(
        big_stat("Records stored /s", "reqps", query(ingest_rate, "A", instant=True), decimals=0).thresholds(
            thresholds("blue")
        ),
        6,
        5,
    )
    grid.place(
        big_stat("Watermark lag", "s", query(m(n.WATERMARK_LAG), "A", instant=True), decimals=0).thresholds(
            thresholds(GREEN, (300, "orange"), (900, RED))
        ),
        6,
        5,
    )
    grid.place(
        big_stat("Dead letters (1h)", "short", query(_dead_letters_1h(), "A", instant=True), decimals=0)
        .thresholds(thresholds(GREEN, (1, RED)))
        .no_value("0"),
        6,
        5,
    )
    grid.place(
        big_stat("Batch time p95", "s", query(_quantile(0.95), "A", instant=True), decimals=3).thresholds(
            thresholds(GREEN, (1, "orange"), (5, RED))
        ),
        6,
        5,
    )
    grid.place(
        series_panel(
            "Records per second by source",
            "reqps",
            query(
                f"sum by (source) (rate({m(n.EVENTS_INGESTED_TOTAL)}{RATE}))",
                "A",
                legend="stored {{source}}",
            ),
            query(
                f"sum by (source) (rate({m(n.EVENTS_DUPLICATE_TOTAL)}{RATE}))",
                "B",
                legend="duplicate {{source}}",
            ),
        ),
        12,
        8,
    )
    grid.place(
        series_panel(
            "Dead letters per second by reason",
            "reqps",
            query(_dead_letter_rate(), "A", legend="{{source}} {{reason}}"),
        ),
        12,
        8,
    )
    grid.place(
        series_panel(
            "Watermark lag (wall clock − newest event time)",
            "s",
            query(m(n.WATERMARK_LAG), "A", legend="lag"),
        ),
        12,
        8,
    )
    grid.place(
        series_panel(
            "Batch time",
            "s",
            query(_quantile(0.5), "A", legend="p50"),
            query(_quantile(0.95), "B", legend="p95"),
            query(_quantile(0.99), "C", legend="p99"),
        ),
        12,
        8,
    )
    grid.place(
        series_panel(
            "Batches per second",
            "ops",
            query(f"sum(rate({m(n.BATCH_DURATION, '_count')}{RATE}))", "A", legend="batches"),
        ),
        12,
        8,
    )
    grid.place(
        series_panel(
            "Newest event time (watermark)",
            "dateTimeAsIso",
            query(f"{sel(n.LAST_EVENT)} * 1000", "A", legend="watermark"),
        ),
        12,
        8,
    )
    # Kafka partitions and refresh jobs: no series until a worker stores a Kafka batch, or a
    # job runs; 0 rather than "no data" in the stats.
    lag = f"sum({m(n.KAFKA_LAG)})"
    failures_1h = f"sum(increase({m(n.REFRESH_FAILURES_TOTAL)}[1h]))"
    grid.place(
        big_stat("Kafka lag (messages)", "short", query(lag, "A", instant=True), decimals=0)
        .thresholds(thresholds(GREEN, (10_000, "orange"), (100_000, RED)))
        .no_value("0"),
        12,
        5,
    )
    grid.place(
        big_stat("Refresh failures (1h)", "short", query(failures_1h, "A", instant=True), decimals=0)
        .thresholds(thresholds(GREEN, (1, RED)))
        .no_value("0"),
        12,
        5,
    )
    grid.place(
        series_panel(
            "Kafka lag by partition (high watermark − stored offset − 1)",
            "short",
            query(f"max by (topic, partition) ({m(n.KAFKA_LAG)})", "A", legend="{{topic}} {{partition}}"),
        ),
        12,
        8,
    )
    grid.place(
        series_panel(
            "Refresh failures per second by job",
            "ops",
            query(f"sum by (job) (rate({m(n.REFRESH_FAILURES_TOTAL)}{RATE}))", "A", legend="{{job}}"),
        ),
        12,
        8,
    )
    grid.place(
        series_panel(
            "Stored Kafka offset by partition",
            "short",
            query(f"max by (topic, partition) ({m(n.KAFKA_STORED_OFFSET)})", "A", legend="{{topic}} {{partition}}"),
        ),
        24,
        8,
    )
    return dashboard(
        UID,
        "callpulse — pipeline health",
        grid,
        refresh="10s",
        time_from="now-1h",
        description=(
            "Is the pipeline keeping up? Throughput, duplicates, dead letters, the data's age, batch time, "
            "Kafka lag and refresh failures."
        ),
    )
