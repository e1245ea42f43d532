"""Every Prometheus metric callpulse exports: name, type, labels and help, in one place.

The exporter (metrics.export.collector), the alert rules (metrics.export.rules) and the Grafana
boards (dashboards/) all take names from here, so a board or a rule can never
refer to a series the exporter does not have (a test checks the three agree).
Units are base units (seconds, ratios 0..1), following Prometheus conventions.
"""

from __future__ import annotations

from dataclasses import dataclass

PREFIX = "callpulse_"
WINDOWS: tuple[str, ...] = ("5m", "15m", "1h")


@dataclass(frozen=True, slots=True)
class MetricName:
    name: str
    kind: str  # gauge | counter | histogram
    labels: tuple[str, ...]
    help: str


def _m(name: str, kind: str, labels: tuple[str, ...], help: str) -> MetricName:
    return MetricName(PREFIX + name, kind, labels, help)


QW = ("queue", "window")

# Rolling-window KPIs per queue (windows end at the watermark).
SERVICE_LEVEL = _m("service_level_ratio", "gauge", QW, "Service level in the window, by the queue's formula.")
ASA = _m("asa_seconds", "gauge", QW, "Average speed of answer in the window.")
ABANDON_RATE = _m("abandon_rate_ratio", "gauge", QW, "Abandon rate in the window, short abandons excluded.")
AHT = _m("aht_seconds", "gauge", QW, "Average handle time (talk + hold + wrap) in the window.")
OCCUPANCY = _m("occupancy_ratio", "gauge", QW, "Agent occupancy in the window.")
WINDOW_OFFERED = _m("window_offered_calls", "gauge", QW, "Calls offered in the window.")
WINDOW_ANSWERED = _m("window_answered_calls", "gauge", QW, "Calls offered in the window and answered.")
WINDOW_ABANDONED = _m("window_abandoned_calls", "gauge", QW, "Calls offered in the window and abandoned.")

# Live per queue.
CALLS_WAITING = _m("calls_waiting", "gauge", ("queue",), "Calls waiting now (as of the watermark).")
OLDEST_WAIT = _m("oldest_wait_seconds", "gauge", ("queue",), "Wait of the longest-waiting call now.")
AGENTS = _m("agents", "gauge", ("queue", "state", "reason"), "Agents per queue and state now.")
AGENTS_NOT_READY_SECONDS = _m(
    "agents_not_ready_seconds",
    "gauge",
    ("queue", "reason"),
    "Time in not-ready so far, summed over the queue's agents not ready now, by reason.",
)
AGENTS_NEEDED = _m(
    "agents_needed",
    "gauge",
    ("queue",),
    "Agents needed now to meet the service-level target at its threshold (Erlang A, or C without abandons) "
    "at the arrival rate and handle time of the staffing window; no sample when its calls cannot say.",
)

# Targets, exported so that alert rules and boards stay generic.
TARGET_SERVICE_LEVEL = _m("target_service_level_ratio", "gauge", ("queue",), "Service level target (at least).")
TARGET_ABANDON_RATE = _m("target_abandon_rate_ratio", "gauge", ("queue",), "Abandon rate target (at most).")
TARGET_ASA = _m("target_asa_seconds", "gauge", ("queue",), "ASA target (at most).")
TARGET_OLDEST_WAIT = _m("target_oldest_wait_seconds", "gauge", ("queue",), "Oldest wait target (at most).")
MIN_CALLS = _m("min_calls", "gauge", ("queue",), "Calls a window needs before a KPI on it can breach.")
SL_THRESHOLD = _m(
    "service_level_threshold_seconds", "gauge", ("queue",), "Answer-within threshold of the service level."
)


@dataclass(frozen=True, slots=True)
class KpiSeries:
    """The series of one KPI of the table in metrics.kpi.definitions: its value, its target."""

    value: MetricName
    target: MetricName


# KPI name (metrics.kpi.definitions) -> its series; a test checks every KPI has one.
KPI_SERIES: dict[str, KpiSeries] = {
    "service_level": KpiSeries(SERVICE_LEVEL, TARGET_SERVICE_LEVEL),
    "abandon_rate": KpiSeries(ABANDON_RATE, TARGET_ABANDON_RATE),
    "asa": KpiSeries(ASA, TARGET_ASA),
    "oldest_wait": KpiSeries(OLDEST_WAIT, TARGET_OLDEST_WAIT),
}

BREACH = _m("kpi_breach", "gauge", ("queue", "kpi", "window"), "1 while the KPI breaches its target, else 0.")

# Counters and a wait histogram (event time), so PromQL can aggregate across queues and workers.
CALLS_OFFERED_TOTAL = _m("calls_offered_total", "counter", ("queue",), "Calls offered.")
CALLS_ANSWERED_TOTAL = _m("calls_answered_total", "counter", ("queue",), "Calls answered.")
CALLS_ABANDONED_TOTAL = _m("calls_abandoned_total", "counter", ("queue",), "Calls abandoned.")
CALLS_ANSWERED_IN_SL_TOTAL = _m(
    "calls_answered_in_sl_total", "counter", ("queue",), "Calls answered within the service-level threshold."
)
WAIT = _m(
    "call_wait_seconds",
    "histogram",
    ("queue",),
    "Wait of answered calls; a bucket at each queue's service-level threshold.",
)

# Call quality (how calls sounded): counters of quality reports (one per call leg and
# direction), counted once each in the first queue the call was offered to, and histograms.
QUALITY_REPORTS_TOTAL = _m(
    "quality_reports_total", "counter", ("queue",), "Quality reports (one call leg and direction) counted."
)
QUALITY_POOR_REPORTS_TOTAL = _m(
    "quality_poor_reports_total",
    "counter",
    ("queue",),
    "Quality reports past the queue's thresholds (MOS below, loss or jitter above) when counted.",
)
QUALITY_MOS = _m("quality_mos", "histogram", ("queue",), "MOS (1-5) of the quality reports that have one.")
QUALITY_JITTER = _m("quality_jitter_seconds", "histogram", ("queue",), "Jitter of the quality reports that have one.")
TARGET_POOR_QUALITY = _m(
    "target_poor_quality_ratio", "gauge", ("queue",), "Poor quality reports target: share of reports (at most)."
)

# Pipeline health.
EVENTS_INGESTED_TOTAL = _m("events_ingested_total", "counter", ("source",), "Records stored.")
EVENTS_DUPLICATE_TOTAL = _m("events_duplicate_total", "counter", ("source",), "Records ignored as duplicates.")
DEAD_LETTERS_TOTAL = _m("dead_letters_total", "counter", ("source", "reason"), "Records sent to dead letters.")
BATCH_DURATION = _m("batch_duration_seconds", "histogram", (), "Time to process one batch.")
WATERMARK_LAG = _m("watermark_lag_seconds", "gauge", (), "Wall clock minus the watermark.")
LAST_EVENT = _m("last_event_timestamp_seconds", "gauge", (), "Event time of the newest event (the watermark).")
KAFKA_STORED_OFFSET = _m(
    "kafka_stored_offset",
    "gauge",
    ("topic", "partition"),
    "Offset of the last message of the Kafka partition stored in DuckDB (saved with its rows).",
)
KAFKA_LAG = _m(
    "kafka_lag_messages",
    "gauge",
    ("topic", "partition"),
    "Messages of the Kafka partition not stored yet: its high watermark as the worker last fetched it, "
    "minus the stored offset, minus 1.",
)
REFRESH_FAILURES_TOTAL = _m(
    "refresh_failures_total",
    "counter",
    ("job",),
    "Refresh jobs (snapshot, /metrics, wallboard, retention ...) that raised; the job's last result stays served.",
)

ALL: tuple[MetricName, ...] = tuple(v for v in dict(globals()).values() if isinstance(v, MetricName))

# Per-agent series: exported only with `[exporter] per_agent = true` (one series per
# agent, so cardinality grows with the roster). Not in ALL: alert rules and the
# queue boards never depend on them; only the agent board does.
QA_WINDOW = "24h"
QA_WINDOW_S = 24 * 3600
AW = ("agent", "window")
AGENT_STATE = _m(
    "agent_state", "gauge", ("agent", "state", "reason"), "1 for the current state of each logged-in agent."
)
AGENT_HANDLED = _m(
    "agent_handled_calls", "gauge", AW, "Calls offered in the window that the agent handled (answered and ended)."
)
AGENT_AHT = _m(
    "agent_aht_seconds",
    "gauge",
    AW,
    "Average handle time (talk + hold + wrap) of the agent's handled calls in the window.",
)
AGENT_OCCUPANCY = _m(
    "agent_occupancy_ratio",
    "gauge",
    AW,
    "Occupancy of one agent in the window: (busy + wrap) / (busy + wrap + ready) time.",
)
AGENT_NOT_READY_SECONDS = _m(
    "agent_not_ready_seconds",
    "gauge",
    ("agent", "reason", "window"),
    "Time the agent spent not ready in the window, by reason.",
)
AGENT_QA_SCORE = _m(
    "agent_qa_score",
    "gauge",
    ("agent",),
    f"Mean QA evaluation score (0-100) of the agent's evaluations made in the last {QA_WINDOW} up to the watermark.",
)
AGENT_QA_EVALUATIONS = _m(
    "agent_qa_evaluations",
    "gauge",
    ("agent",),
    f"QA evaluations of the agent made in the last {QA_WINDOW} up to the watermark.",
)
PER_AGENT: tuple[MetricName, ...] = (
    AGENT_STATE,
    AGENT_HANDLED,
    AGENT_AHT,
    AGENT_OCCUPANCY,
    AGENT_NOT_READY_SECONDS,
    AGENT_QA_SCORE,
    AGENT_QA_EVALUATIONS,
)
