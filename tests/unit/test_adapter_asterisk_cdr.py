"""Asterisk CDR CSV with RTPAUDIOQOS / MES → quality records, expected values worked out by hand."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from pipeline.core.records import DeadLetter, Parsed, RawBatch
from pipeline.ingest.adapters import get_adapter
from pipeline.ingest.adapters.asterisk_cdr import parse_qos, qos_quality
from pipeline.ingest.adapters.detect import detect_file
from pipeline.ingest.sources.adapted import numbered_lines
from tests.helpers import engine, feed, frame

CSV = Path(__file__).resolve().parents[1] / "fixtures" / "adapters" / "asterisk_cdr_qos.csv"
OPTIONS = {"timezone": "Asia/Shanghai"}  # the CDR's local times are +08:00


def run(path: Path = CSV) -> tuple[list[dict[str, Any]], list[tuple[str, str]], Counter[str], list[str]]:
    stats: Counter[str] = Counter()
    records, dead, raws = [], [], []
    for item in get_adapter("asterisk-cdr")(numbered_lines(str(path)), "ast", {**OPTIONS, "stats": stats}):
        raws.append(item.raw)
        if isinstance(item, Parsed):
            records.append(item.record)
        else:
            assert isinstance(item, DeadLetter)
            dead.append((item.position, item.reason))
    return records, dead, stats, raws


def q(call_id: str, leg: str, direction: str, end: str, **measures: Any) -> dict[str, Any]:
    return {"type": "quality", "call_id": call_id, "leg": leg, "direction": direction, "at": end, **measures}


MES = "asterisk_mes"


def test_cdr_csv_by_hand() -> None:
    records, dead, stats, raws = run()
    assert records == [
        # in: rxjitter 0.002375 s = 2.375 ms; lp 20 of 1980 + 20 = 1 %; rtt 0.017517 s = 17.517 ms; rxmes
        q("1772442000.11", "caller", "in", "2026-03-02T17:04:40+08:00", jitter_ms=2.375, loss_pct=1.0,
          rtt_ms=17.517, vendor_score=87.921944, vendor_score_kind=MES, trunk="carrier-a"),
        # out: txjitter 0.625 ms; rlp 10 of txcount 2000 = 0.5 %; txmes
        q("1772442000.11", "caller", "out", "2026-03-02T17:04:40+08:00", jitter_ms=0.625, loss_pct=0.5,
          rtt_ms=17.517, vendor_score=87.805427, vendor_score_kind=MES, trunk="carrier-a"),
        # the bridged (agent) leg: rtt 0.000000 = no RTCP, no rtt
        q("1772442000.11", "agent", "in", "2026-03-02T17:04:40+08:00", jitter_ms=40.0, loss_pct=0.0),
        q("1772442000.11", "agent", "out", "2026-03-02T17:04:40+08:00", jitter_ms=1.0, loss_pct=0.0),
        # MES from its own column; txcount 0: nothing sent, no out record
        q("1772442300.12", "caller", "in", "2026-03-02T17:07:00+08:00", jitter_ms=10.0, loss_pct=0.0,
          rtt_ms=120.0, vendor_score=71.5, vendor_score_kind=MES, trunk="carrier-b"),
        # row 4 (no packets either way) gives nothing; garbage is passed on for validation
        q("1772442540.14", "caller", "in", "2026-03-02T17:10:00+08:00", jitter_ms="abc", loss_pct="x",
          rtt_ms=50.0, trunk="trunk1"),
        q("1772442540.14", "caller", "out", "2026-03-02T17:10:00+08:00", jitter_ms=1.0, loss_pct=0.0,
          rtt_ms=50.0, trunk="trunk1"),
    ]  # fmt: skip
    assert dead == [
        ("6", "unreadable RTPAUDIOQOS of leg caller: 'garbage'"),
        ("8", "expected 23 columns, got 5"),
        ("9", "unreadable end time: 'yesterday'"),
    ]
    assert stats["skipped:no RTPAUDIOQOS"] == 1
    assert not any("8613800000" in r for r in raws)  # caller numbers masked in every raw text


def test_mes_is_never_a_mos_and_zero_mes_is_not_computed() -> None:
    qos = parse_qos("ssrc=1;lp=0;rxjitter=0.001;rxcount=10;txjitter=0.001;txcount=10;rlp=0;rtt=0;rxmes=0;txmes=55")
    assert qos is not None
    got = qos_quality(qos)
    assert "vendor_score" not in got["in"] and "mos" not in got["in"]
    assert (got["out"]["vendor_score"], got["out"]["vendor_score_kind"]) == (55.0, MES)
    assert parse_qos("no pairs here") is None


def test_auto_detects_the_cdr_export() -> None:
    assert detect_file(str(CSV)) == "asterisk-cdr"


def replayed_after_its_call(call_id: str, path: Path = CSV) -> Any:
    """An engine holding the queue_log's answered call ``call_id``, then the CDR file."""
    eng = engine()
    feed(
        eng,
        [
            {"type": "call", "event": "offered", "call_id": call_id, "queue": "support",
             "at": "2026-03-02T09:00:00Z"},
            {"type": "call", "event": "answered", "call_id": call_id, "queue": "support",
             "at": "2026-03-02T09:00:13Z", "agent_id": "2002"},
        ],
    )  # fmt: skip
    eng.process(RawBatch.from_items("ast", get_adapter("asterisk-cdr")(numbered_lines(str(path)), "ast", OPTIONS)))
    return eng


def test_through_the_pipeline_with_the_queue_log_call() -> None:
    eng = replayed_after_its_call("1772442000.11")
    reasons = frame(eng, "SELECT reason FROM dead_letters ORDER BY position").get_column("reason").to_list()
    assert reasons[0] == "not a number: jitter_ms"
    r = frame(eng, "SELECT jitter_ms, loss_pct, rtt_ms, vendor_score, mos, poor, trunk FROM call_quality")
    # worst of the four: jitter 40 ms (agent in) > 30, loss 1 % (not > 1), no MOS
    assert r.rows() == [(40.0, 1.0, 17.517, 87.805427, None, True, "carrier-a")]
