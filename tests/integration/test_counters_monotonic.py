"""Counters never go down: the real exporter served over HTTP, scraped before and after a
restart that changes service-level thresholds (one per queue, one the global default).
Every counter sample scraped before is there after and not smaller, and the figures equal
counts made by hand: each call counted once, as decided when it was stored."""

from __future__ import annotations

import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from devtools.procs import free_port
from metrics.export import names
from pipeline.cli.services import start_services
from pipeline.core.config import Config, ExporterSettings, QueueSettings
from tests import helpers

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
Sample = tuple[str, tuple[tuple[str, str], ...]]


def _ev(event: str, call_id: str, queue: str, at_s: float) -> dict[str, Any]:
    return {
        "type": "call",
        "event": event,
        "call_id": call_id,
        "queue": queue,
        "at": (T0 + timedelta(seconds=at_s)).isoformat(),
    }


def answered(call_id: str, queue: str, start_s: float, wait_s: float) -> list[dict[str, Any]]:
    return [_ev("offered", call_id, queue, start_s), _ev("answered", call_id, queue, start_s + wait_s)]


def config(billing_sl: float, default_sl: float) -> Config:
    return Config(
        defaults=QueueSettings(sl_threshold_s=default_sl),
        queues={"billing": QueueSettings(sl_threshold_s=billing_sl)},
        exporter=ExporterSettings(port=free_port()),
    )


def scrape_after(db: Path, cfg: Config, batches: list[tuple[str, list[dict[str, Any]]]]) -> dict[Sample, float]:
    """Open the database with ``cfg``, serve /metrics, store ``batches``, scrape once; close."""
    engine = helpers.engine(db=db, config=cfg)
    services = start_services(engine, cfg, serve=True, refresh_every_s=0)
    try:
        for source, records in batches:
            engine.process(helpers.batch(records, source))
        assert services.server is not None
        with urllib.request.urlopen(services.server.url + "/metrics", timeout=5) as response:
            text = response.read().decode()
    finally:
        services.close()
        engine.close()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    }


COUNTERS = {m.name for m in names.ALL if m.kind == "counter"}
HISTOGRAMS = {m.name for m in names.ALL if m.kind == "histogram"} - {names.BATCH_DURATION.name}


def counter_samples(scraped: dict[Sample, float]) -> dict[Sample, float]:
    """The counter samples (``_total``) and the call-wait histogram's (its buckets count calls)."""
    return {
        k: v
        for k, v in scraped.items()
        if k[0] in COUNTERS or any(k[0] == h + suffix for h in HISTOGRAMS for suffix in ("_bucket", "_count", "_sum"))
    }


def q(queue: str) -> tuple[tuple[str, str], ...]:
    return (("queue", queue),)


def bucket(queue: str, le: str) -> Sample:
    return (names.WAIT.name + "_bucket", (("le", le), ("queue", queue)))


DAY1 = [
    *answered("b1", "billing", 0, 5),
    *answered("b2", "billing", 60, 12),
    *answered("b3", "billing", 120, 18),
    *answered("b4", "billing", 180, 25),
    _ev("offered", "b5", "billing", 240),
    _ev("abandoned", "b5", "billing", 270),
    *answered("s1", "sales", 0, 8),
    *answered("s2", "sales", 60, 14),
    *answered("s3", "sales", 120, 40),
]
BAD = {"type": "call", "event": "offered", "call_id": "x"}  # no queue: a dead letter


def test_counters_never_go_down_across_threshold_changes_and_restarts(tmp_path: Path) -> None:
    db = tmp_path / "cp.duckdb"
    before = scrape_after(
        db,
        config(billing_sl=20, default_sl=15),
        [("file:/data/day1.jsonl", DAY1), ("file:/data/day1.jsonl", [*DAY1[:2], BAD])],
    )
    # By hand: billing answered within 20 s: waits 5, 12, 18 (not 25); sales within 15 s: 8, 14.
    assert before[(names.CALLS_ANSWERED_IN_SL_TOTAL.name, q("billing"))] == 3
    assert before[(names.CALLS_ANSWERED_IN_SL_TOTAL.name, q("sales"))] == 2
    assert before[(names.EVENTS_INGESTED_TOTAL.name, (("source", "file"),))] == 16
    assert before[(names.EVENTS_DUPLICATE_TOTAL.name, (("source", "file"),))] == 2

    # Restart with lower thresholds: a recount would now find 2 and 1 answered within.
    lower = config(billing_sl=17, default_sl=10)
    restarted = scrape_after(db, lower, [])
    old = counter_samples(before)
    assert len(old) > 30
    for key, value in old.items():
        assert key in restarted, key
        assert restarted[key] >= value, (key, value, restarted[key])
    # The new bound at billing's 17 s starts from the calls stored (5 and 12 s), between its neighbours.
    assert restarted[bucket("billing", "17.0")] == 2
    assert (
        restarted[bucket("billing", "15.0")]
        <= restarted[bucket("billing", "17.0")]
        <= restarted[bucket("billing", "20.0")]
    )

    # After the restart: b6's answer comes before its offer (counted when both are known, at
    # the threshold then in force: 9 <= 17); s4 waits 12 > 10; a re-delivered day-1 record.
    after = scrape_after(
        db,
        lower,
        [
            (
                "kafka:callpulse.calls",
                [_ev("answered", "b6", "billing", 309), *answered("s4", "sales", 300, 12), DAY1[0]],
            ),
            ("kafka:callpulse.calls", [_ev("offered", "b6", "billing", 300)]),
        ],
    )
    for key, value in counter_samples(restarted).items():
        assert after[key] >= value, (key, value, after[key])
    expected = {
        (names.CALLS_OFFERED_TOTAL.name, q("billing")): 6,
        (names.CALLS_ANSWERED_TOTAL.name, q("billing")): 5,
        (names.CALLS_ABANDONED_TOTAL.name, q("billing")): 1,
        (names.CALLS_ANSWERED_IN_SL_TOTAL.name, q("billing")): 4,
        (names.WAIT.name + "_sum", q("billing")): 5 + 12 + 18 + 25 + 9,
        (names.CALLS_OFFERED_TOTAL.name, q("sales")): 4,
        (names.CALLS_ANSWERED_TOTAL.name, q("sales")): 4,
        (names.CALLS_ANSWERED_IN_SL_TOTAL.name, q("sales")): 2,
        (names.WAIT.name + "_sum", q("sales")): 8 + 14 + 40 + 12,
        bucket("billing", "10.0"): 2,  # 5, 9
        bucket("billing", "17.0"): 3,  # 2 at the restart, then 9
        bucket("sales", "15.0"): 3,  # 8, 14, 12
        (names.EVENTS_INGESTED_TOTAL.name, (("source", "file"),)): 16,
        (names.EVENTS_INGESTED_TOTAL.name, (("source", "kafka"),)): 4,
        (names.EVENTS_DUPLICATE_TOTAL.name, (("source", "kafka"),)): 1,
        (names.DEAD_LETTERS_TOTAL.name, (("reason", "missing_field"), ("source", "file"))): 1,
    }
    assert {k: after.get(k) for k in expected} == expected


def test_a_database_from_before_the_counters_starts_them_from_its_stored_calls(tmp_path: Path) -> None:
    """Opened by this version, a database without counter rows gets them recounted once from
    its stored calls (the only time they are counted from the data), buckets included."""
    db = tmp_path / "old.duckdb"
    cfg = config(billing_sl=20, default_sl=15)
    engine = helpers.engine(db=db, config=cfg)
    try:
        engine.process(helpers.batch(DAY1))
        engine.store.con.execute("DELETE FROM queue_counters; DELETE FROM queue_wait_buckets")
    finally:
        engine.close()
    got = scrape_after(db, cfg, [])
    # By hand, as in the test above: billing 5 offered, 4 answered (3 within 20 s), 1 abandoned.
    assert got[(names.CALLS_OFFERED_TOTAL.name, q("billing"))] == 5
    assert got[(names.CALLS_ANSWERED_IN_SL_TOTAL.name, q("billing"))] == 3
    assert got[(names.CALLS_ABANDONED_TOTAL.name, q("billing"))] == 1
    assert got[(names.CALLS_ANSWERED_IN_SL_TOTAL.name, q("sales"))] == 2
    assert got[(names.WAIT.name + "_sum", q("sales"))] == 8 + 14 + 40
    assert got[bucket("billing", "15.0")] == 2 and got[bucket("billing", "20.0")] == 3
