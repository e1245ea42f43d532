"""The Prometheus collector on a fresh registry, with a hand-built snapshot."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import REGISTRY

from metrics.export import names
from metrics.export.collector import (
    AgentKpis,
    AgentRow,
    AgentWindow,
    CallTotals,
    ExportState,
    Health,
    KpiCollector,
    reason_label,
    source_kind,
    wait_bounds,
)
from metrics.kpi.snapshot import KpiSnapshot, QueueKpis, QueueSnapshot, QueueTargets
from metrics.kpi.staffing import StaffingNeed
from tests.support.prometheus import Tool
from tests.support.scrape import families, samples, value

WM = datetime(2026, 3, 2, 2, 30, tzinfo=UTC)
NOW = WM + timedelta(seconds=42)
ODD = 'we"ird\\queue\nname'  # quote, backslash, newline


def targets(threshold: float = 15.0) -> QueueTargets:
    return QueueTargets(
        service_level=0.8,
        abandon_rate=0.05,
        asa_s=30.0,
        oldest_wait_s=120.0,
        min_calls=10,
        sl_threshold_s=threshold,
        sl_formula="negative",
    )


def queue(
    name: str,
    kpis: QueueKpis,
    threshold: float = 15.0,
    waiting: int = 0,
    oldest: float | None = None,
    agents: dict[tuple[str, str], int] | None = None,
    agent_seconds: dict[tuple[str, str], float] | None = None,
    staffing: StaffingNeed | None = None,
) -> QueueSnapshot:
    return QueueSnapshot(
        queue=name,
        targets=targets(threshold),
        windows={"5m": kpis, "15m": kpis, "1h": kpis},
        interval=kpis,
        interval_start=WM,
        calls_waiting=waiting,
        oldest_wait_s=oldest,
        agents=agents or {},
        agent_seconds=agent_seconds or {},
        staffing=staffing,
    )


BUSY = QueueKpis(
    offered=20,
    answered=15,
    abandoned=3,
    short_abandoned=1,
    answered_in_sl=10,
    service_level=10 / 19,
    asa_s=22.5,
    abandon_rate=2 / 19,
    aht_s=300.0,
)
EMPTY = QueueKpis()  # no calls: every ratio undefined


def state(**kw: object) -> ExportState:
    snap = KpiSnapshot(
        watermark=WM,
        interval_s=900,
        queues={
            "billing": queue(
                "billing",
                BUSY,
                waiting=2,
                oldest=75.0,
                agents={("ready", ""): 3, ("not_ready", "lunch"): 2},
                agent_seconds={("ready", ""): 30.0, ("not_ready", "lunch"): 1500.0},
                staffing=StaffingNeed(7, None, "erlang_c", 19, 900, 300.0, None, 0.83),
            ),
            "quiet": queue(
                "quiet",
                EMPTY,
                threshold=20.0,
                staffing=StaffingNeed(None, "fewer than 10 calls", None, 0, 900, None, None, None),
            ),
            ODD: queue(ODD, BUSY),
        },
    )
    bounds = wait_bounds([15.0, 20.0])
    base: dict[str, object] = dict(
        snapshot=snap,
        calls={
            "billing": CallTotals(100, 90, 8, 70, 900.0, tuple(min(90, 10 * i) for i in range(len(bounds)))),
            "not-configured": CallTotals(5, 5, 0, 5, 1.0, (5,) * len(bounds)),
        },
        wait_bounds=bounds,
        occupancy={("billing", "15m"): 0.85, ("billing", "5m"): None},
        breaches=frozenset({("billing", "service_level", "15m")}),
        health=Health(
            ingested={"kafka": 10, "file": 3},
            duplicates={"kafka": 1},
            dead_letters={("file", "missing_field"): 2},
            batch_buckets=(0, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2),
            batch_count=2,
            batch_sum_s=0.03,
        ),
    )
    base.update(kw)
    return ExportState(**base)  # type: ignore[arg-type]


def scrape(st: ExportState | None, per_agent: bool = False) -> str:
    registry = CollectorRegistry()
    registry.register(KpiCollector(lambda: st, clock=lambda: NOW, per_agent=per_agent))
    return generate_latest(registry).decode()


def _base(metric: names.MetricName) -> str:
    return metric.name.removesuffix("_total") if metric.kind == "counter" else metric.name


def test_every_name_in_names_all_with_help_and_type_and_nothing_else() -> None:
    text = scrape(state())
    fams = families(text)
    assert set(fams) == {_base(m) for m in names.ALL}
    for m in names.ALL:
        assert f"# HELP {m.name} " in text
        assert f"# TYPE {m.name} {m.kind}" in text


def test_labels_match_names() -> None:
    text = scrape(state())
    for fam in text_string_to_metric_families(text):
        metric = next(m for m in names.ALL if _base(m) == fam.name)
        for s in fam.samples:
            assert set(s.labels) - {"le"} == set(metric.labels), (s, metric)


def test_window_kpis_and_live_values() -> None:
    text = scrape(state())
    assert value(text, names.SERVICE_LEVEL.name, queue="billing", window="15m") == pytest.approx(10 / 19)
    assert value(text, names.ASA.name, queue="billing", window="5m") == 22.5
    assert value(text, names.WINDOW_OFFERED.name, queue="billing", window="1h") == 20
    assert value(text, names.OCCUPANCY.name, queue="billing", window="15m") == 0.85
    assert value(text, names.CALLS_WAITING.name, queue="billing") == 2
    assert value(text, names.OLDEST_WAIT.name, queue="billing") == 75.0
    assert value(text, names.AGENTS.name, queue="billing", state="not_ready", reason="lunch") == 2
    assert value(text, names.AGENTS.name, queue="billing", state="busy", reason="") == 0
    assert value(text, names.TARGET_SERVICE_LEVEL.name, queue="billing") == 0.8
    assert value(text, names.SL_THRESHOLD.name, queue="quiet") == 20.0
    assert value(text, names.MIN_CALLS.name, queue="quiet") == 10
    assert value(text, names.WATERMARK_LAG.name) == 42.0
    assert value(text, names.LAST_EVENT.name) == WM.timestamp()


def test_undefined_kpis_have_no_sample_but_counts_are_zero() -> None:
    text = scrape(state())
    for metric in (names.SERVICE_LEVEL, names.ASA, names.ABANDON_RATE, names.AHT, names.OCCUPANCY):
        assert value(text, metric.name, queue="quiet", window="15m") is None
    assert value(text, names.OCCUPANCY.name, queue="billing", window="5m") is None
    assert value(text, names.WINDOW_OFFERED.name, queue="quiet", window="15m") == 0
    assert value(text, names.CALLS_WAITING.name, queue="quiet") == 0
    assert value(text, names.OLDEST_WAIT.name, queue="quiet") == 0  # nobody waiting
    assert value(text, names.CALLS_OFFERED_TOTAL.name, queue="quiet") == 0
    assert value(text, names.WAIT.name + "_count", queue="quiet") == 0
    assert "NaN" not in text


def test_agents_needed_per_queue_and_no_sample_when_unknown() -> None:
    text = scrape(state())
    assert samples(text, names.AGENTS_NEEDED.name) == {(("queue", "billing"),): 7.0}


def test_no_series_for_a_queue_outside_the_snapshot() -> None:
    assert "not-configured" not in scrape(state())


def test_breach_gauge_is_one_only_for_open_breaches() -> None:
    text = scrape(state())
    got = samples(text, names.BREACH.name)
    ones = [dict(k) for k, v in got.items() if v == 1]
    assert ones == [{"queue": "billing", "kpi": "service_level", "window": "15m"}]
    # every queue x kpi x window (3 window KPIs and the poor-quality share), oldest wait on the live "window"
    assert len(got) == 3 * (4 * 3 + 1)
    assert value(text, names.BREACH.name, queue="quiet", kpi="poor_quality", window="15m") == 0
    assert value(text, names.BREACH.name, queue="quiet", kpi="oldest_wait", window="live") == 0


def test_counters_and_wait_histogram() -> None:
    text = scrape(state())
    assert value(text, names.CALLS_OFFERED_TOTAL.name, queue="billing") == 100
    assert value(text, names.CALLS_ANSWERED_IN_SL_TOTAL.name, queue="billing") == 70
    buckets = {
        dict(k)["le"]: v for k, v in samples(text, names.WAIT.name + "_bucket").items() if dict(k)["queue"] == "billing"
    }
    assert "15.0" in buckets and "20.0" in buckets  # one bucket at each queue's threshold
    assert buckets["+Inf"] == 90
    assert list(buckets.values()) == sorted(buckets.values())  # cumulative
    assert value(text, names.WAIT.name + "_sum", queue="billing") == 900.0


def test_pipeline_health() -> None:
    text = scrape(state())
    assert value(text, names.EVENTS_INGESTED_TOTAL.name, source="kafka") == 10
    assert value(text, names.EVENTS_DUPLICATE_TOTAL.name, source="kafka") == 1
    assert value(text, names.DEAD_LETTERS_TOTAL.name, source="file", reason="missing_field") == 2
    assert value(text, names.BATCH_DURATION.name + "_count") == 2
    assert value(text, names.BATCH_DURATION.name + "_bucket", le="+Inf") == 2


def test_label_values_are_escaped_and_round_trip() -> None:
    text = scrape(state())
    assert 'queue="we\\"ird\\\\queue\\nname"' in text
    assert value(text, names.SERVICE_LEVEL.name, queue=ODD, window="15m") == pytest.approx(10 / 19)


def test_before_the_first_refresh_only_health_families_have_samples() -> None:
    text = scrape(None)
    assert set(families(text)) == {_base(m) for m in names.ALL}
    assert value(text, names.BATCH_DURATION.name + "_count") == 0
    assert value(text, names.WATERMARK_LAG.name) is None


AGENT_KPIS = (
    AgentKpis(
        "a-001",
        {
            "15m": AgentWindow(handled=4, aht_s=250.0, occupancy=0.5, not_ready_s={"break": 120.0, "": 30.0}),
            "5m": AgentWindow(handled=0, aht_s=None, occupancy=None),
        },
        qa_score=87.5,
        qa_evaluations=2,
    ),
    AgentKpis("a-003", {}, qa_score=None, qa_evaluations=0),
)


def test_per_agent_series_only_when_enabled() -> None:
    agents = (
        AgentRow("a-001", "ready", ""),
        AgentRow("a-002", "not_ready", "break"),
    )
    st = state(agents=agents, agent_kpis=AGENT_KPIS)
    off = scrape(st, per_agent=False)
    assert "callpulse_agent_" not in off
    assert set(families(off)) == {_base(m) for m in names.ALL}
    text = scrape(st, per_agent=True)
    assert set(families(text)) == {_base(m) for m in (*names.ALL, *names.PER_AGENT)}
    assert value(text, names.AGENT_STATE.name, agent="a-002", state="not_ready", reason="break") == 1
    assert value(text, names.AGENT_OCCUPANCY.name, agent="a-001", window="15m") == 0.5
    assert value(text, names.AGENT_OCCUPANCY.name, agent="a-001", window="5m") is None
    assert value(text, names.AGENT_HANDLED.name, agent="a-001", window="15m") == 4
    assert value(text, names.AGENT_HANDLED.name, agent="a-001", window="5m") == 0  # a count: 0, not missing
    assert value(text, names.AGENT_AHT.name, agent="a-001", window="15m") == 250.0
    assert value(text, names.AGENT_AHT.name, agent="a-001", window="5m") is None  # undefined: no sample
    nr = samples(text, names.AGENT_NOT_READY_SECONDS.name)
    assert {tuple(dict(k).values()): v for k, v in nr.items()} == {
        ("a-001", "", "15m"): 30.0,
        ("a-001", "break", "15m"): 120.0,
    }
    assert value(text, names.AGENT_QA_SCORE.name, agent="a-001") == 87.5
    assert value(text, names.AGENT_QA_EVALUATIONS.name, agent="a-001") == 2
    assert value(text, names.AGENT_QA_SCORE.name, agent="a-003") is None
    assert value(text, names.AGENT_QA_EVALUATIONS.name, agent="a-003") is None
    for fam in text_string_to_metric_families(text):
        metric = next(m for m in (*names.ALL, *names.PER_AGENT) if _base(m) == fam.name)
        for s in fam.samples:
            assert set(s.labels) - {"le"} == set(metric.labels), (s, metric)


def test_not_ready_seconds_per_queue_always_exported() -> None:
    text = scrape(state())
    assert samples(text, names.AGENTS_NOT_READY_SECONDS.name) == {
        (("queue", "billing"), ("reason", "lunch")): 1500.0,  # ready time is not counted
        (("queue", "quiet"), ("reason", "")): 0.0,  # nobody not ready: one zero sample
        (("queue", ODD), ("reason", "")): 0.0,
    }


def test_per_agent_names_are_apart_from_names_all() -> None:
    assert not set(names.PER_AGENT) & set(names.ALL)
    assert all(m.name.startswith("callpulse_agent_") and "agent" in m.labels for m in names.PER_AGENT)
    assert {m.name for m in names.PER_AGENT} >= {names.AGENT_STATE.name, names.AGENT_OCCUPANCY.name}


def test_describe_reads_nothing_and_nothing_touches_the_global_registry() -> None:
    before = set(REGISTRY._names_to_collectors)  # noqa: SLF001 - checking isolation

    def boom() -> ExportState:
        raise AssertionError("describe must not read state")

    registry = CollectorRegistry()
    registry.register(KpiCollector(boom))
    assert set(REGISTRY._names_to_collectors) == before  # noqa: SLF001
    assert names.SERVICE_LEVEL.name in registry._names_to_collectors  # noqa: SLF001


@pytest.mark.parametrize(
    ("raw", "label"),
    [
        ("file:/data/x.jsonl", "file"),
        ("kafka:callpulse.calls", "kafka"),
        ("simulator", "simulator"),
        ("stdin", "stdin"),
        ("", "unknown"),
    ],
)
def test_source_kind(raw: str, label: str) -> None:
    assert source_kind(raw) == label


@pytest.mark.parametrize(
    ("raw", "label"),
    [
        ("missing field: queue", "missing_field"),
        ("bad timestamp (ISO 8601 with offset or epoch seconds): at", "bad_timestamp"),
        (
            "timestamp in the future (more than 300 s ahead of the clock): at",
            "timestamp_in_the_future",
        ),
        ("score outside 0..100", "score_outside"),
        ("malformed JSON: JSONDecodeError", "malformed_json"),
        ("???", "other"),
    ],
)
def test_reason_label_is_bounded(raw: str, label: str) -> None:
    assert reason_label(raw) == label


def test_wait_bounds_add_every_threshold() -> None:
    assert wait_bounds([15.0, 17.5, 0.0]) == tuple(sorted({5, 10, 15, 17.5, 20, 30, 45, 60, 90, 120, 180, 300, 600}))


def test_promtool_check_metrics_accepts_the_output(promtool: Tool) -> None:
    text = scrape(state(agents=(AgentRow("a-1", "busy", ""),), agent_kpis=AGENT_KPIS), per_agent=True)
    promtool.ok("check", "metrics", stdin=text, timeout=60)
