"""The native ``quality`` record: what is kept, what is dead-lettered and why, dedupe by key."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.core.config import ConfigError, config_from_dict
from tests.helpers import engine, feed, frame

AT = "2026-03-02T09:05:00Z"


def quality(**fields: Any) -> dict[str, Any]:
    return {"type": "quality", "call_id": "c1", "leg": "a", "direction": "in", "at": AT, **fields}


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ({"type": "quality", "leg": "a", "direction": "in", "at": AT, "mos": 4}, "missing field: call_id"),
        ({"type": "quality", "call_id": "c1", "direction": "in", "at": AT, "mos": 4}, "missing field: leg"),
        ({"type": "quality", "call_id": "c1", "leg": "a", "at": AT, "mos": 4}, "missing field: direction"),
        ({"type": "quality", "call_id": "c1", "leg": "a", "direction": "in", "mos": 4}, "missing field: at"),
        (quality(direction="both", mos=4), "unknown quality direction (in or out): both"),
        (quality(mos=0.99), "mos outside 1..5"),
        (quality(mos="0.00"), "mos outside 1..5"),
        (quality(mos=5.01), "mos outside 1..5"),
        (quality(mos="good"), "not a number: mos"),
        (quality(mos="NaN"), "not a number: mos"),
        (quality(r_factor=-1), "r_factor outside 0..100"),
        (quality(r_factor=100.5), "r_factor outside 0..100"),
        (quality(jitter_ms=-0.1), "negative jitter_ms"),
        (quality(loss_pct=101), "loss_pct outside 0..100"),
        (quality(loss_pct=-2), "loss_pct outside 0..100"),
        (quality(rtt_ms=-5), "negative rtt_ms"),
        (quality(rtt_ms="12ms"), "not a number: rtt_ms"),
        (quality(), "quality record without a measure (mos, r_factor, jitter_ms, loss_pct, rtt_ms, vendor_score)"),
        (quality(trunk="t1", tags=["x"]), "quality record without a measure"),
        (quality(vendor_score=80), "vendor_score without vendor_score_kind"),
        (quality(mos=4, at="yesterday"), "bad timestamp (ISO 8601 with offset or epoch seconds): at"),
    ],
)
def test_bad_quality_records_are_dead_letters_with_a_reason(record: dict[str, Any], reason: str) -> None:
    eng = engine()
    feed(eng, [record, quality(call_id="ok", mos=4.0)])
    dead = frame(eng, "SELECT reason FROM dead_letters").get_column("reason").to_list()
    assert len(dead) == 1 and dead[0].startswith(reason), dead
    # the run goes on: the good record of the same batch is stored
    assert frame(eng, "SELECT call_id FROM quality_reports").get_column("call_id").to_list() == ["ok"]


def test_a_quality_record_is_stored_with_every_field() -> None:
    eng = engine()
    record = quality(
        mos="4.1", r_factor=82.5, jitter_ms="12.5", loss_pct=0.25, rtt_ms=48, vendor_score=" 87 ",
        vendor_score_kind="asterisk_mes", trunk="carrier-a", tags=["pstn", "eu"],
    )  # fmt: skip
    feed(eng, [record])
    row = frame(eng, "SELECT * EXCLUDE (ts, source) FROM quality_reports").to_dicts()
    assert row == [
        {
            "call_id": "c1", "leg": "a", "direction": "in", "mos": 4.1, "r_factor": 82.5, "jitter_ms": 12.5,
            "loss_pct": 0.25, "rtt_ms": 48.0, "vendor_score": 87.0, "vendor_score_kind": "asterisk_mes",
            "trunk": "carrier-a", "tags": ["pstn", "eu"],
        }
    ]  # fmt: skip


def test_edges_of_the_ranges_are_kept() -> None:
    eng = engine()
    feed(
        eng,
        [
            quality(leg="a", mos=1, r_factor=0, jitter_ms=0, loss_pct=0, rtt_ms=0),
            quality(leg="b", mos=5, r_factor=100, loss_pct=100),
            quality(leg="c", direction="out", vendor_score=-3, vendor_score_kind="x"),
        ],
    )
    assert frame(eng, "SELECT count(*) AS n FROM quality_reports").item() == 3
    assert frame(eng, "SELECT count(*) AS n FROM dead_letters").item() == 0


def test_the_key_is_call_leg_direction_and_the_first_record_wins() -> None:
    eng = engine()
    feed(eng, [quality(mos=4.0), quality(mos=2.0), quality(direction="out", mos=3.0)])
    feed(eng, [quality(mos=1.5), quality(leg="b", mos=3.5)])
    rows = frame(eng, "SELECT leg, direction, mos FROM quality_reports ORDER BY leg, direction").rows()
    assert rows == [("a", "in", 4.0), ("a", "out", 3.0), ("b", "in", 3.5)]
    # duplicates are counted as such, not dead-lettered
    assert frame(eng, "SELECT count(*) FROM dead_letters").item() == 0
    counted = frame(eng, "SELECT metric, value FROM pipeline_counters WHERE metric IN ('ingested', 'duplicates')")
    assert dict(counted.rows()) == {"ingested": 3, "duplicates": 2}


def test_quality_thresholds_per_queue_from_config() -> None:
    cfg = config_from_dict(
        {"defaults": {"quality": {"poor_jitter_ms": 40}}, "queues": {"vip": {"quality": {"poor_mos": 4.0}}}}
    )
    vip, other = cfg.for_queue("vip").quality, cfg.for_queue("other").quality
    assert (vip.poor_mos, vip.poor_loss_pct, vip.poor_jitter_ms) == (4.0, 1.0, 40.0)
    assert (other.poor_mos, other.poor_loss_pct, other.poor_jitter_ms) == (3.5, 1.0, 40.0)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"defaults": {"quality": {"poor_mos": 6}}}, "defaults.quality.poor_mos: must be between 1 and 5"),
        ({"queues": {"q": {"quality": {"poor_loss_pct": "1%"}}}}, "queues.q.quality.poor_loss_pct: expected a number"),
        ({"defaults": {"quality": {"poor_rtt_ms": 1}}}, "defaults.quality.poor_rtt_ms: unknown key"),
    ],
)
def test_bad_quality_thresholds_name_the_key(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        config_from_dict(raw)


def test_quality_travels_on_the_qa_topic_keyed_by_call_id() -> None:
    from pipeline.core.config import KafkaSettings
    from pipeline.ingest.sources.kafka import route, topic_names

    topics = topic_names(KafkaSettings(topic_prefix="x."))
    assert route(quality(mos=4.0), topics) == ("x.qa", b"c1")
