"""The Prometheus ``Collector`` over the latest published KPI state.

``KpiCollector(source)`` reads one ``ExportState`` (the KPI snapshot plus what the
exporter's refresh job computed on the refresher's thread: call totals, wait histogram,
occupancy, open breaches, pipeline health) and turns it into metric families named
in ``metrics.export.names``. It never touches DuckDB and never registers itself anywhere:
give it to a registry of your own (``CollectorRegistry().register(collector)``).

Rules of the output: base units; an undefined KPI (None) has no sample (never 0 or
NaN); a queue known from config is exported with zeros for its counts; labels are
bounded (source kinds, reason prefixes); per-agent series only when asked for.
Not-ready time per queue (``callpulse_agents_not_ready_seconds``) is always there: one
series per queue and reason, ``reason=""`` with 0 while nobody is not ready.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from metrics.export import names
from metrics.kpi import definitions
from metrics.kpi.breaches import Key
from metrics.kpi.definitions import LIVE
from metrics.kpi.snapshot import KpiSnapshot, QueueKpis

# Where the bounds and labels were defined before the counters were stored; kept importable.
from pipeline.core.counters import QUALITY_JITTER_BUCKETS_S, QUALITY_MOS_BUCKETS
from pipeline.core.counters import WAIT_BUCKETS as WAIT_BUCKETS
from pipeline.core.counters import reason_label as reason_label
from pipeline.core.counters import source_kind as source_kind
from pipeline.core.counters import wait_bounds as wait_bounds
from pipeline.core.ownership import EVERYTHING, Ownership
from pipeline.core.records import LOGGED_IN_STATES

PREFIX = names.PREFIX

BATCH_BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


@dataclass(frozen=True, slots=True)
class CallTotals:
    """One queue's stored call counters (pipeline/core/counters.py: they only grow)."""

    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    answered_in_sl: int = 0
    wait_sum_s: float = 0.0
    wait_buckets: tuple[int, ...] = ()  # cumulative counts per ExportState.wait_bounds


@dataclass(frozen=True, slots=True)
class QualityTotals:
    """One queue's stored quality counters (sql/export/quality_counters.sql: they only grow)."""

    reports: int = 0
    poor: int = 0
    mos_count: int = 0
    mos_sum: float = 0.0
    mos_buckets: tuple[int, ...] = ()  # cumulative counts per QUALITY_MOS_BUCKETS
    jitter_count: int = 0
    jitter_sum_s: float = 0.0
    jitter_buckets: tuple[int, ...] = ()  # cumulative counts per QUALITY_JITTER_BUCKETS_S


@dataclass(frozen=True, slots=True)
class PartitionOffset:
    """How far one Kafka partition is stored (sql/export/source_offsets.sql)."""

    topic: str
    partition: int
    offset: int
    lag: int | None = None  # None: the partition's high watermark is not known


@dataclass(frozen=True, slots=True)
class Health:
    """Pipeline counters (labels already bounded): the record counts are the stored ones,
    kept across restarts; the batch-duration histogram is this process's."""

    ingested: Mapping[str, int] = field(default_factory=dict)
    duplicates: Mapping[str, int] = field(default_factory=dict)
    dead_letters: Mapping[tuple[str, str], int] = field(default_factory=dict)
    batch_buckets: tuple[int, ...] = ()  # cumulative counts per BATCH_BUCKETS
    batch_count: int = 0
    batch_sum_s: float = 0.0
    refresh_failures: Mapping[str, int] = field(default_factory=dict)  # job -> failures (0: known job)
    offsets: tuple[PartitionOffset, ...] = ()


@dataclass(frozen=True, slots=True)
class AgentRow:
    """The current state of one logged-in agent."""

    agent: str
    state: str
    reason: str


@dataclass(frozen=True, slots=True)
class AgentWindow:
    """One agent's KPIs over one rolling window; None where undefined."""

    handled: int = 0
    aht_s: float | None = None
    occupancy: float | None = None
    not_ready_s: Mapping[str, float] = field(default_factory=dict)  # reason ('' if none) -> seconds


@dataclass(frozen=True, slots=True)
class AgentKpis:
    """One agent's rolling-window KPIs and QA score (over names.QA_WINDOW)."""

    agent: str
    windows: Mapping[str, AgentWindow] = field(default_factory=dict)
    qa_score: float | None = None
    qa_evaluations: int = 0


@dataclass(frozen=True, slots=True)
class ExportState:
    """Everything one scrape shows; built by the refresh job, replaced whole."""

    snapshot: KpiSnapshot | None
    calls: Mapping[str, CallTotals] = field(default_factory=dict)
    wait_bounds: tuple[float, ...] = WAIT_BUCKETS
    occupancy: Mapping[tuple[str, str], float | None] = field(default_factory=dict)  # (queue, window)
    breaches: frozenset[Key] = frozenset()
    health: Health = field(default_factory=Health)
    agents: tuple[AgentRow, ...] | None = None  # None: per-agent series off
    agent_kpis: tuple[AgentKpis, ...] = ()
    quality: Mapping[str, QualityTotals] = field(default_factory=dict)


Clock = Callable[[], datetime]

_WINDOW_GAUGES: tuple[tuple[names.MetricName, str], ...] = (
    *((names.KPI_SERIES[k.name].value, k.value) for k in definitions.rolling()),
    (names.AHT, "aht_s"),
    (names.WINDOW_OFFERED, "offered"),
    (names.WINDOW_ANSWERED, "answered"),
    (names.WINDOW_ABANDONED, "abandoned"),
)


def _family(metric: names.MetricName, labels: tuple[str, ...] | None = None) -> Metric:
    labels = metric.labels if labels is None else labels
    if metric.kind == "counter":
        return CounterMetricFamily(metric.name, metric.help, labels=labels)
    if metric.kind == "histogram":
        return HistogramMetricFamily(metric.name, metric.help, labels=labels)
    return GaugeMetricFamily(metric.name, metric.help, labels=labels)


class KpiCollector(Collector):
    """Metric families from ``source()`` (the latest ``ExportState``, or None before the first)."""

    def __init__(
        self,
        source: Callable[[], ExportState | None],
        clock: Clock | None = None,
        per_agent: bool = False,
        ownership: Callable[[], Ownership] | None = None,
    ) -> None:
        """``ownership()`` says, at each scrape, which queues, agents and partitions this
        process answers for (a worker sharing the queues of a group); the rest is not shown."""
        self.source = source
        self.clock = clock or (lambda: datetime.now(UTC))
        self.per_agent = per_agent
        self.ownership = ownership or (lambda: EVERYTHING)

    def describe(self) -> Iterator[Metric]:
        """Empty families with every name this collector may export (no data read)."""
        for metric in (*names.ALL, *(names.PER_AGENT if self.per_agent else ())):
            yield _family(metric)

    def collect(self) -> Iterator[Metric]:
        state = self.source() or ExportState(snapshot=None)
        fam = {m.name: _family(m) for m in (*names.ALL, *(names.PER_AGENT if self.per_agent else ()))}
        snap = state.snapshot
        owned = self.ownership()
        if snap is not None:
            self._queues(snap, state, fam, owned)
        self._health(snap, state.health, fam, owned)
        if self.per_agent and state.agents is not None:
            self._agents(state.agents, state.agent_kpis, fam, owned)
        yield from fam.values()

    # -- per queue ---------------------------------------------------------------------

    def _queues(self, snap: KpiSnapshot, state: ExportState, fam: dict[str, Metric], owned: Ownership) -> None:
        bounds = [_le(b) for b in state.wait_bounds]
        for queue, q in sorted(snap.queues.items()):
            if not owned.owns_queue(queue):
                continue
            for window, kpis in q.windows.items():
                for metric, attr in _WINDOW_GAUGES:
                    _add(fam, metric, [queue, window], _kpi(kpis, attr))
                _add(fam, names.OCCUPANCY, [queue, window], state.occupancy.get((queue, window)))
            _add(fam, names.CALLS_WAITING, [queue], q.calls_waiting)
            _add(fam, names.OLDEST_WAIT, [queue], q.oldest_wait_s or 0.0)
            agents = dict(q.agents)
            for s in LOGGED_IN_STATES:
                if not any(state_ == s for state_, _ in agents):
                    agents[(s, "")] = 0
            for (agent_state, reason), n in sorted(agents.items()):
                _add(fam, names.AGENTS, [queue, agent_state, reason or ""], n)
            for reason, seconds in sorted((q.not_ready_seconds() or {"": 0.0}).items()):
                _add(fam, names.AGENTS_NOT_READY_SECONDS, [queue, reason], seconds)
            _add(fam, names.AGENTS_NEEDED, [queue], q.staffing.agents if q.staffing else None)
            t = q.targets
            for kpi in definitions.QUEUE_KPIS:
                _add(fam, names.KPI_SERIES[kpi.name].target, [queue], getattr(t, kpi.target))
                for w in q.windows if kpi.rolling else (LIVE,):
                    _add(fam, names.BREACH, [queue, kpi.name, w], 1 if (queue, kpi.name, w) in state.breaches else 0)
            _add(fam, names.MIN_CALLS, [queue], t.min_calls)
            _add(fam, names.SL_THRESHOLD, [queue], t.sl_threshold_s)
            calls = state.calls.get(queue, CallTotals())
            _add(fam, names.CALLS_OFFERED_TOTAL, [queue], calls.offered)
            _add(fam, names.CALLS_ANSWERED_TOTAL, [queue], calls.answered)
            _add(fam, names.CALLS_ABANDONED_TOTAL, [queue], calls.abandoned)
            _add(fam, names.CALLS_ANSWERED_IN_SL_TOTAL, [queue], calls.answered_in_sl)
            counts = calls.wait_buckets or (0,) * len(bounds)
            buckets = [(le, float(n)) for le, n in zip(bounds, counts, strict=True)]
            buckets.append(("+Inf", float(calls.answered)))
            hist = fam[names.WAIT.name]
            assert isinstance(hist, HistogramMetricFamily)
            hist.add_metric([queue], buckets, calls.wait_sum_s)
            _add(fam, names.TARGET_POOR_QUALITY, [queue], t.poor_quality_ratio)
            for kpi in definitions.QUALITY_KPIS:
                for w in q.windows:
                    _add(fam, names.BREACH, [queue, kpi.name, w], 1 if (queue, kpi.name, w) in state.breaches else 0)
            self._quality(queue, state.quality.get(queue, QualityTotals()), fam)

    def _quality(self, queue: str, q: QualityTotals, fam: dict[str, Metric]) -> None:
        _add(fam, names.QUALITY_REPORTS_TOTAL, [queue], q.reports)
        _add(fam, names.QUALITY_POOR_REPORTS_TOTAL, [queue], q.poor)
        for metric, bounds, counts, count, total in (
            (names.QUALITY_MOS, QUALITY_MOS_BUCKETS, q.mos_buckets, q.mos_count, q.mos_sum),
            (names.QUALITY_JITTER, QUALITY_JITTER_BUCKETS_S, q.jitter_buckets, q.jitter_count, q.jitter_sum_s),
        ):
            cumulative = counts or (0,) * len(bounds)
            buckets = [(_le(b), float(n)) for b, n in zip(bounds, cumulative, strict=True)]
            buckets.append(("+Inf", float(count)))
            hist = fam[metric.name]
            assert isinstance(hist, HistogramMetricFamily)
            hist.add_metric([queue], buckets, total)

    # -- pipeline health ---------------------------------------------------------------

    def _health(self, snap: KpiSnapshot | None, h: Health, fam: dict[str, Metric], owned: Ownership) -> None:
        for source, n in sorted(h.ingested.items()):
            _add(fam, names.EVENTS_INGESTED_TOTAL, [source], n)
        # A source that stored records but never met a duplicate still exports 0, so a
        # rate over it is 0 rather than "No data".
        for source in sorted(h.ingested.keys() | h.duplicates.keys()):
            _add(fam, names.EVENTS_DUPLICATE_TOTAL, [source], h.duplicates.get(source, 0))
        for (source, reason), n in sorted(h.dead_letters.items()):
            _add(fam, names.DEAD_LETTERS_TOTAL, [source, reason], n)
        counts = h.batch_buckets or (0,) * len(BATCH_BUCKETS)
        buckets = [(_le(b), float(n)) for b, n in zip(BATCH_BUCKETS, counts, strict=True)]
        buckets.append(("+Inf", float(h.batch_count)))
        hist = fam[names.BATCH_DURATION.name]
        assert isinstance(hist, HistogramMetricFamily)
        hist.add_metric([], buckets, h.batch_sum_s)
        for job, n in sorted(h.refresh_failures.items()):
            _add(fam, names.REFRESH_FAILURES_TOTAL, [job], n)
        for o in h.offsets:
            if not owned.owns_partition(o.topic, o.partition):
                continue
            _add(fam, names.KAFKA_STORED_OFFSET, [o.topic, str(o.partition)], o.offset)
            _add(fam, names.KAFKA_LAG, [o.topic, str(o.partition)], o.lag)
        if snap is not None and snap.watermark is not None:
            _add(fam, names.LAST_EVENT, [], snap.watermark.timestamp())
            _add(fam, names.WATERMARK_LAG, [], (self.clock() - snap.watermark).total_seconds())

    def _agents(
        self, agents: tuple[AgentRow, ...], kpis: tuple[AgentKpis, ...], fam: dict[str, Metric], owned: Ownership
    ) -> None:
        for row in agents:
            if owned.owns_agent(row.agent):
                _add(fam, names.AGENT_STATE, [row.agent, row.state, row.reason], 1)
        for k in kpis:
            if not owned.owns_agent(k.agent):
                continue
            for window, w in sorted(k.windows.items()):
                _add(fam, names.AGENT_HANDLED, [k.agent, window], w.handled)
                _add(fam, names.AGENT_AHT, [k.agent, window], w.aht_s)
                _add(fam, names.AGENT_OCCUPANCY, [k.agent, window], w.occupancy)
                for reason, seconds in sorted(w.not_ready_s.items()):
                    _add(fam, names.AGENT_NOT_READY_SECONDS, [k.agent, reason, window], seconds)
            if k.qa_evaluations:
                _add(fam, names.AGENT_QA_SCORE, [k.agent], k.qa_score)
                _add(fam, names.AGENT_QA_EVALUATIONS, [k.agent], k.qa_evaluations)


def _kpi(kpis: QueueKpis, attr: str) -> float | None:
    value = getattr(kpis, attr)
    return None if value is None else float(value)


def _add(fam: dict[str, Metric], metric: names.MetricName, labels: list[str], value: float | None) -> None:
    """Add one sample; None (an undefined KPI) adds nothing."""
    if value is None:
        return
    family = fam[metric.name]
    assert isinstance(family, GaugeMetricFamily | CounterMetricFamily)
    family.add_metric(labels, float(value))


def _le(bound: float) -> str:
    return f"{bound:g}" if bound != int(bound) else f"{int(bound)}.0"
