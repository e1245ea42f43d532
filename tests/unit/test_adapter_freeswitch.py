"""FreeSWITCH CDRs (JSON and XML fixtures) → cdr and quality records, expected values worked out by hand."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from pipeline.core.records import DeadLetter, Parsed, RawBatch
from pipeline.ingest.adapters import get_adapter
from pipeline.ingest.adapters.detect import detect_file
from pipeline.ingest.adapters.freeswitch import quality_of
from pipeline.ingest.sources.adapted import numbered_lines
from tests.helpers import engine, frame

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "adapters"
JSONL, XML = FIXTURES / "freeswitch_cdrs.jsonl", FIXTURES / "freeswitch_cdrs.xml"
T0 = 1772442000.0  # 2026-03-02T09:00:00Z


def run(path: Path) -> tuple[list[dict[str, Any]], list[tuple[str, str]], Counter[str]]:
    stats: Counter[str] = Counter()
    records, dead = [], []
    for item in get_adapter("freeswitch")(numbered_lines(str(path)), "fs", {"stats": stats}):
        if isinstance(item, Parsed):
            records.append(item.record)
        else:
            assert isinstance(item, DeadLetter)
            dead.append((item.position, item.reason))
    return records, dead, stats


def quality(call_id: str, leg: str, direction: str, at: float, **measures: Any) -> dict[str, Any]:
    return {"type": "quality", "call_id": call_id, "leg": leg, "direction": direction, "at": at, **measures}


def test_json_cdrs_by_hand() -> None:
    records, dead, stats = run(JSONL)
    assert records == [
        {"type": "cdr", "call_id": "fs-1", "queue": "billing", "offered_at": T0, "caller": "+8613800000001",
         "outcome": "answered", "answered_at": T0 + 12, "agent_id": "1001", "ended_at": T0 + 280},
        # in: loss 0.0125 -> 1.25 %, jitter sqrt(16) = 4 ms; flaws ignored when the loss rate is given
        quality("fs-1", "caller", "in", T0 + 280, mos=4.31, r_factor=88.5, loss_pct=1.25, jitter_ms=4.0,
                trunk="carrier-a"),
        # out: variance 0.00 = not measured (no jitter); loss 0.00 is a real 0 %
        quality("fs-1", "caller", "out", T0 + 280, mos=4.1, r_factor=85.0, loss_pct=0.0, trunk="carrier-a"),
        # fs-2: no packets in -> no quality record; MOS 0.00 is not a MOS
        {"type": "cdr", "call_id": "fs-2", "queue": "billing", "offered_at": T0 + 300, "caller": "+8613800000002",
         "outcome": "abandoned", "ended_at": T0 + 330},
        {"type": "cdr", "call_id": "fs-3", "queue": "billing", "offered_at": T0 + 600, "outcome": "exited",
         "ended_at": T0 + 720},
        quality("fs-3", "caller", "in", T0 + 780, loss_pct=0.0),
        {"type": "cdr", "call_id": "fs-4", "queue": "sales", "offered_at": T0 + 1200, "caller": "+8613800000004",
         "outcome": "answered",
         "answered_at": T0 + 1260, "agent_id": "1002", "ended_at": T0 + 1560},
        quality("fs-4", "caller", "in", T0 + 1560, mos="n/a", loss_pct=0.2),  # garbage passed on for validation
        # the agent leg of fs-1: loss 3.1 %, jitter sqrt(1296) = 36 ms
        quality("fs-1", "agent", "in", T0 + 281, mos=3.2, r_factor=62.0, loss_pct=3.1, jitter_ms=36.0),
        # fs-5: no loss rate: 50 flaws / (950 packets + 50) = 5 %
        {"type": "cdr", "call_id": "fs-5", "queue": "sales", "offered_at": T0, "outcome": "answered",
         "answered_at": T0 + 12, "agent_id": "1002", "ended_at": T0 + 280},
        quality("fs-5", "caller", "in", T0 + 280, mos=3.05, loss_pct=5.0),
    ]  # fmt: skip
    assert dead == [("7", "truncated JSON"), ("8", "member CDR without uuid")]
    assert stats["skipped:no cc_queue"] == 1
    assert (stats["answered"], stats["abandoned"], stats["exited"], stats["quality"]) == (3, 1, 1, 6)


def test_xml_cdrs_by_hand() -> None:
    records, dead, _ = run(XML)
    assert records == [
        {"type": "cdr", "call_id": "fx-1", "queue": "sales", "offered_at": T0, "caller": "+8613800000003",
         "outcome": "answered", "answered_at": T0 + 12, "agent_id": "1002", "ended_at": T0 + 280},
        quality("fx-1", "caller", "in", T0 + 280, mos=4.45, r_factor=92.0, loss_pct=0.4, jitter_ms=10.0,
                trunk="carrier-b"),
        {"type": "cdr", "call_id": "fx-3", "queue": "sales", "offered_at": T0 + 300, "outcome": "abandoned",
         "ended_at": T0 + 330},
        quality("fx-3", "caller", "in", T0 + 330, mos=9.99),
    ]  # fmt: skip
    assert len(dead) == 1 and dead[0][1].startswith("broken XML: mismatched tag")


def test_missing_zero_and_garbage_values_per_field() -> None:
    v = {"rtp_audio_in_packet_count": "100"}
    assert quality_of(v, "in") is None  # counts only: no measure
    assert quality_of({**v, "rtp_audio_in_mos": "0.00"}, "in") is None
    assert quality_of({**v, "rtp_audio_in_quality_percentage": "0.00"}, "in") is None
    assert quality_of({**v, "rtp_audio_in_jitter_max_variance": "0.00"}, "in") is None
    assert quality_of({**v, "rtp_audio_in_jitter_loss_rate": "0.00"}, "in") == {"loss_pct": 0.0}
    assert quality_of({**v, "rtp_audio_in_flaw_total": "0"}, "in") == {"loss_pct": 0.0}
    assert quality_of({**v, "rtp_audio_in_jitter_loss_rate": "lots"}, "in") == {"loss_pct": "lots"}
    assert quality_of({**v, "rtp_audio_in_flaw_total": "x"}, "in") == {"loss_pct": "x"}
    assert quality_of({**v, "rtp_audio_in_jitter_max_variance": "wide"}, "in") == {"jitter_ms": "wide"}
    assert quality_of({**v, "rtp_audio_in_quality_percentage": "71.5"}, "in") == {"r_factor": 71.5}
    assert quality_of({"rtp_audio_out_packet_count": "0", "rtp_audio_out_mos": "4.4"}, "out") is None
    assert quality_of({"rtp_audio_out_mos": "4.4"}, "out") == {"mos": 4.4}  # no packet count: taken as given


def test_auto_detects_both_freeswitch_forms() -> None:
    assert detect_file(str(JSONL)) == "freeswitch"
    assert detect_file(str(XML)) == "freeswitch"


def test_through_the_pipeline_garbage_and_out_of_range_quality_is_dead_lettered_calls_stay() -> None:
    eng = engine()
    for path in (JSONL, XML):
        items = get_adapter("freeswitch")(numbered_lines(str(path)), path.name, {})
        eng.process(RawBatch.from_items(path.name, items))
    reasons = frame(eng, "SELECT reason FROM dead_letters ORDER BY reason").get_column("reason").to_list()
    assert reasons == [
        "broken XML: mismatched tag: line 5, column 4",
        "member CDR without uuid",
        "mos outside 1..5",
        "not a number: mos",
        "truncated JSON",
    ]
    raws = frame(eng, "SELECT raw FROM dead_letters").get_column("raw").to_list()
    assert not any("8613800000" in r for r in raws)  # the CDR's caller never in the clear
    calls = frame(eng, "SELECT call_id FROM calls ORDER BY call_id").get_column("call_id").to_list()
    assert calls == ["fs-1", "fs-2", "fs-3", "fs-4", "fs-5", "fx-1", "fx-3"]
    # fs-1: worst of caller in (4.31, 4 ms, 1.25 %), caller out (4.10, 0 %) and agent in (3.20, 36 ms, 3.1 %)
    r = frame(eng, "SELECT mos, jitter_ms, loss_pct, reports, poor FROM call_quality WHERE call_id = 'fs-1'")
    assert r.rows() == [(3.2, 36.0, 3.1, 3, True)]
