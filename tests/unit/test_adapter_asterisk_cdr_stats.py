"""Asterisk CDR CSV with RTPAUDIOQOSJITTER / LOSS / RTT (and BRIDGED twins) → quality records,
expected values worked out by hand.

Asterisk writes those variables as ``minrxjitter=…;maxrxjitter=…;avgrxjitter=…;…;
reported_avgjitter=…;…`` and ``minrtt=…;maxrtt=…;avgrtt=…;stdevrtt=…`` (seconds): whole-call
means, used instead of RTPAUDIOQOS's last values (avgrxjitter for ``in``,
reported_avgjitter for ``out``, avgrtt for both); an absent or 0 mean leaves RTPAUDIOQOS's
figure. RTPAUDIOQOSLOSS carries packet counts without a base and is not read.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.core.records import RawBatch
from pipeline.ingest.adapters import get_adapter
from pipeline.ingest.adapters.asterisk_cdr import parse_qos, qos_quality
from pipeline.ingest.adapters.detect import detect_file
from pipeline.ingest.sources.adapted import numbered_lines
from tests.helpers import engine, frame
from tests.unit.test_adapter_asterisk_cdr import OPTIONS, q, replayed_after_its_call, run

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "adapters"
WITH_QOS = FIXTURES / "asterisk_cdr_qos_stats.csv"
STATS_ONLY = FIXTURES / "asterisk_cdr_qos_only_stats.csv"


def test_jitter_and_rtt_means_replace_the_hangup_values_by_hand() -> None:
    records, dead, stats, raws = run(WITH_QOS)
    assert records == [
        # in: avgrxjitter 0.0065 s (not rxjitter 0.004); loss lp 10 of 990 + 10 = 1 %; avgrtt
        # 0.041 s (not rtt 0.030); RTPAUDIOQOSLOSS plays no part
        q("1772442000.21", "caller", "in", "2026-03-02T17:04:40+08:00", jitter_ms=6.5, loss_pct=1.0,
          rtt_ms=41.0, trunk="carrier-a"),
        # out: reported_avgjitter 0.00225 s; rlp 5 of txcount 1000 = 0.5 %
        q("1772442000.21", "caller", "out", "2026-03-02T17:04:40+08:00", jitter_ms=2.25, loss_pct=0.5,
          rtt_ms=41.0, trunk="carrier-a"),
        # agent leg: avgrxjitter 0.0008 s; reported_avgjitter 0 (no RTCP report) leaves txjitter
        # 0.002 s; no RTPAUDIOQOSRTTBRIDGED and rtt 0: no rtt
        q("1772442000.21", "agent", "in", "2026-03-02T17:04:40+08:00", jitter_ms=0.8, loss_pct=0.0),
        q("1772442000.21", "agent", "out", "2026-03-02T17:04:40+08:00", jitter_ms=2.0, loss_pct=0.0),
        # "0.00" / "0" means leave RTPAUDIOQOS's rxjitter 3 ms, txjitter 1 ms, rtt 25 ms; the
        # garbage RTPAUDIOQOSLOSS is not read
        q("1772442300.22", "caller", "in", "2026-03-02T17:07:00+08:00", jitter_ms=3.0, loss_pct=0.0,
          rtt_ms=25.0, trunk="carrier-b"),
        q("1772442300.22", "caller", "out", "2026-03-02T17:07:00+08:00", jitter_ms=1.0, loss_pct=0.0,
          rtt_ms=25.0, trunk="carrier-b"),
        # no avg keys in RTPAUDIOQOSJITTER, RTT column empty: RTPAUDIOQOS alone (rlp 8 of 800 = 1 %)
        q("1772442420.23", "caller", "in", "2026-03-02T17:09:00+08:00", jitter_ms=12.0, loss_pct=0.0,
          rtt_ms=100.0, trunk="carrier-a"),
        q("1772442420.23", "caller", "out", "2026-03-02T17:09:00+08:00", jitter_ms=9.0, loss_pct=1.0,
          rtt_ms=100.0, trunk="carrier-a"),
        # garbage means are passed on for validation to dead-letter, naming the field
        q("1772442540.24", "caller", "in", "2026-03-02T17:10:00+08:00", jitter_ms="abc", loss_pct=0.0,
          rtt_ms="fast", trunk="trunk1"),
        q("1772442540.24", "caller", "out", "2026-03-02T17:10:00+08:00", jitter_ms=4.0, loss_pct=0.0,
          rtt_ms="fast", trunk="trunk1"),
    ]  # fmt: skip
    assert dead == [("6", "unreadable RTPAUDIOQOSJITTER of leg caller: 'garbage'")]
    assert stats["quality"] == 10 and stats["skipped:no RTPAUDIOQOS"] == 0
    assert not any("8613800000" in r for r in raws)  # caller numbers masked in every raw text


def test_the_statistics_alone_still_give_quality_by_hand() -> None:
    """No RTPAUDIOQOS column: no packet counts, so no loss and no direction left out for
    want of packets; a leg's all-zero means give nothing; RTPAUDIOQOSLOSS alone is skipped."""
    records, dead, stats, _ = run(STATS_ONLY)
    end = "2026-03-02T17:04:40+08:00"
    assert records == [
        q("1772442000.31", "caller", "in", end, jitter_ms=15.0, rtt_ms=80.0, trunk="carrier-b"),
        q("1772442000.31", "caller", "out", end, jitter_ms=35.0, rtt_ms=80.0, trunk="carrier-b"),
        q("1772442000.31", "agent", "in", end, jitter_ms=1.0, rtt_ms=2.0),
        q("1772442000.31", "agent", "out", end, jitter_ms=1.5, rtt_ms=2.0),
    ]
    assert dead == [("5", "unreadable RTPAUDIOQOSRTT of leg caller: 'no pairs at all'")]
    assert stats["skipped:no RTPAUDIOQOS"] == 1  # the row with only RTPAUDIOQOSLOSS


def test_qos_quality_prefers_a_mean_and_falls_back_field_by_field() -> None:
    qos = parse_qos("ssrc=1;lp=0;rxjitter=0.010;rxcount=10;txjitter=0.020;txcount=10;rlp=0;rtt=0.3")
    jitter = parse_qos("avgrxjitter=0.000;reported_avgjitter=0.0415")
    rtt = parse_qos("minrtt=0.1;maxrtt=0.3;stdevrtt=0.1")  # no avgrtt
    assert qos is not None and jitter is not None and rtt is not None
    got = qos_quality(qos, jitter=jitter, rtt=rtt)
    assert got == {
        "in": {"jitter_ms": 10.0, "loss_pct": 0.0, "rtt_ms": 300.0},
        "out": {"jitter_ms": 41.5, "loss_pct": 0.0, "rtt_ms": 300.0},
    }
    assert qos_quality({}, jitter=parse_qos("avgrxjitter=0;reported_avgjitter=0")) == {}


def test_auto_detects_both_exports() -> None:
    assert detect_file(str(WITH_QOS)) == "asterisk-cdr"
    assert detect_file(str(STATS_ONLY)) == "asterisk-cdr"


def test_statistics_only_export_through_the_pipeline() -> None:
    eng = replayed_after_its_call("1772442000.31", STATS_ONLY)
    r = frame(eng, "SELECT jitter_ms, loss_pct, rtt_ms, poor_network, poor, trunk FROM call_quality")
    # worst of the four: jitter 35 ms (caller out) > 30: poor; rtt 80 ms; no loss known
    assert r.rows() == [(35.0, None, 80.0, True, True, "carrier-b")]


def test_garbage_means_are_dead_lettered_naming_the_field() -> None:
    eng = engine()
    eng.process(RawBatch.from_items("ast", get_adapter("asterisk-cdr")(numbered_lines(str(WITH_QOS)), "ast", OPTIONS)))
    reasons = frame(eng, "SELECT position, reason FROM dead_letters ORDER BY position, reason").rows()
    assert reasons == [
        ("5", "not a number: jitter_ms"),
        ("5", "not a number: rtt_ms"),
        ("6", "unreadable RTPAUDIOQOSJITTER of leg caller: 'garbage'"),
    ]
