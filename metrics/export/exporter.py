"""``/metrics``: attaches the KPI collector and its refresh job to
the runtime services (pipeline/serve/host.py).

Threads: two refresher jobs build one immutable ``ExportState``. ``Exporter.live`` is
pushed (pipeline/serve/refresher.py): it runs on the publisher thread right after every
batch commits (while the engine stores the next), first of the live jobs, and reads what
a batch changes and /metrics counts: the counters stored in DuckDB (calls, wait
histogram, records by source: pipeline/core/counters.py, so they never go down), the
stored Kafka offsets, the refresh failures and this process's batch times; all small
tables, so a counted call reaches /metrics as soon as its batch is stored, without
waiting for the KPI snapshot the publisher takes next (several times their cost; a
queue's series start with the first snapshot that knows the queue). A
scrape shows the latest snapshot published beside them: for that snapshot's time the
counters are one batch ahead of the KPI gauges (both from stored, committed batches).
``Exporter.boards`` runs on the refresher's
thread and connection: the open breaches (decided on the engine thread:
metrics/kpi/breaches.py), occupancy and (with ``per_agent``) each agent's state, window
KPIs and QA score. The HTTP handler only formats what was published
(``generate_latest`` on the exporter's own registry).
A second job, on the engine thread, keeps the refresh failures in DuckDB so that a
restart continues them.

Served on the [exporter] host/port of the config (127.0.0.1:9464 by default) by the
services' HTTP server.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import duckdb
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from metrics.export import names
from metrics.export.collector import (
    BATCH_BUCKETS,
    WAIT_BUCKETS,
    AgentKpis,
    AgentRow,
    AgentWindow,
    CallTotals,
    ExportState,
    Health,
    KpiCollector,
    PartitionOffset,
    QualityTotals,
)
from metrics.kpi.breaches import open_breach_keys
from metrics.kpi.snapshot import KpiSnapshot
from pipeline.core import counters, sqlfiles
from pipeline.core.config import Config
from pipeline.core.engine import Totals
from pipeline.core.lookback import agents_lookback
from pipeline.core.ownership import Ownership
from pipeline.serve.host import Services
from pipeline.serve.http import Response

PUBLISHED = "exporter"
LIVE_JOB = "exporter_live"
FAILURES_JOB = "refresh_failures"
ROUTE = "/metrics"


class HealthTracker:
    """The stored record counters (kept across restarts) and this process's batch-duration
    histogram, kept incrementally from the engine's totals (each batch time is read once)."""

    def __init__(self) -> None:
        self._seen = 0
        self._buckets = [0] * len(BATCH_BUCKETS)
        self._count = 0
        self._sum = 0.0

    def update(
        self,
        totals: Totals,
        stored: Mapping[str, Mapping[tuple[str, str], int]],
        failures: Mapping[str, int],
        offsets: tuple[PartitionOffset, ...],
    ) -> Health:
        new = totals.batch_seconds_since(self._seen)
        self._seen = totals.batches
        for seconds in new:
            first = bisect.bisect_left(BATCH_BUCKETS, seconds)
            for i in range(first, len(BATCH_BUCKETS)):
                self._buckets[i] += 1
            self._count += 1
            self._sum += seconds
        return Health(
            {source: n for (source, _), n in stored.get(counters.INGESTED, {}).items()},
            {source: n for (source, _), n in stored.get(counters.DUPLICATES, {}).items()},
            dict(stored.get(counters.DEAD_LETTERS, {})),
            tuple(self._buckets),
            self._count,
            self._sum,
            dict(failures),
            offsets,
        )


class Exporter:
    """The exporter of one engine: registry, collector, refresh job (it publishes the open breaches)."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        config: Config,
        totals: Totals,
        snapshot: Any = None,
        clock: Any = None,
        failures: Callable[[], Mapping[str, int]] | None = None,
        ownership: Callable[[], Ownership] | None = None,
    ) -> None:
        self.config = config
        self.totals = totals
        self.snapshot = snapshot or (lambda: None)
        self.failures = failures or dict
        self.health = HealthTracker()
        self.state: ExportState | None = None
        # The two halves of the state, written by their own threads (live / boards below).
        self._lock = threading.Lock()
        self._live = ExportState(snapshot=None)
        self._boards = ExportState(snapshot=None)
        self.collector = KpiCollector(
            self.scraped, clock=clock, per_agent=config.exporter.per_agent, ownership=ownership
        )
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(self.collector)
        # The last exposition and what it was rendered from (see metrics_text), replaced whole.
        self._rendered: tuple[ExportState | None, KpiSnapshot | None, tuple[Any, ...], bytes] | None = None

    def refresh(self, con: duckdb.DuckDBPyConnection) -> ExportState:
        """Both halves below at once (one thread): the state the next scrapes show."""
        self.live(con)
        return self.boards(con)

    def live(self, con: duckdb.DuckDBPyConnection) -> ExportState:
        """The pushed half, on the publisher thread after every batch: the stored counters and
        the pipeline's health (the snapshot's KPIs join them at each scrape: ``scraped``).
        Small tables only (a row per queue, bound, source, partition), so it costs the same
        after a month as on the first day."""
        bounds, calls = _call_totals(con)
        health = self.health.update(self.totals, counters.pipeline_counts(con), self.failures(), _source_offsets(con))
        with self._lock:
            self._live = ExportState(
                snapshot=None, calls=calls, wait_bounds=bounds, health=health, quality=_quality_totals(con)
            )
            return self._compose()

    def boards(self, con: duckdb.DuckDBPyConnection) -> ExportState:
        """The refreshed half, on the refresher's thread: open breaches, occupancy and (with
        ``per_agent``) the agents' states and window KPIs, which read the windows' events."""
        breaches = open_breach_keys(con)
        snap: KpiSnapshot | None = self.snapshot()
        occupancy: dict[tuple[str, str], float | None] = {}
        agents: tuple[AgentRow, ...] | None = None
        agent_kpis: tuple[AgentKpis, ...] = ()
        watermark = snap.watermark if snap is not None else None
        if watermark is not None:
            label = {w: name for name, w in self.config.windows}
            params = {"wm": watermark, "widths": sorted(label)}
            # each agent's state when the widest window opens: searched back only as far as needed
            lo = watermark - timedelta(seconds=max(label))
            since = agents_lookback(con, "export/occupancy_before_missing", lo, lo=lo)
            for r in sqlfiles.dicts(con, "export/queue_occupancy", **params, lo=lo, since=since):
                occupancy[(r["queue"], label[int(r["width_s"])])] = r["occupancy"]
            if self.config.exporter.per_agent:
                agents = tuple(
                    AgentRow(r["agent_id"], r["state"], r["reason"]) for r in sqlfiles.dicts(con, "export/agent_states")
                )
                agent_kpis = _agent_kpis(con, watermark, label)
        with self._lock:
            self._boards = ExportState(
                snapshot=None, occupancy=occupancy, breaches=breaches, agents=agents, agent_kpis=agent_kpis
            )
            return self._compose()

    def _compose(self) -> ExportState:
        """The state scrapes show: the latest of each half (caller holds the lock)."""
        live, boards = self._live, self._boards
        self.state = ExportState(
            snapshot=None,
            calls=live.calls,
            wait_bounds=live.wait_bounds,
            occupancy=boards.occupancy,
            breaches=boards.breaches,
            health=live.health,
            agents=boards.agents,
            agent_kpis=boards.agent_kpis,
            quality=live.quality,
        )
        return self.state

    def scraped(self) -> ExportState | None:
        """What a scrape shows: the latest state with the latest published KPI snapshot and
        the refresh failures so far (a live job after /metrics' own, such as the snapshot,
        may have failed since it was read)."""
        state, snap, failures = self.state, self.snapshot(), dict(self.failures())
        if state is None or (state.snapshot is snap and state.health.refresh_failures == failures):
            return state
        return replace(state, snapshot=snap, health=replace(state.health, refresh_failures=failures))

    def metrics_text(self) -> bytes:
        """The exposition of the latest state, rendered once per published state, snapshot,
        refresh failures, ownership and second of the clock (the watermark lag is the one value that moves
        between publications): scrapers and boards polling many times a second cost one
        rendering, not one each (it holds the GIL the engine thread needs between its
        statements)."""
        state, snap = self.state, self.snapshot()
        moved = (dict(self.failures()), self.collector.ownership(), int(self.collector.clock().timestamp()))
        last = self._rendered
        if last is not None and last[0] is state and last[1] is snap and last[2] == moved:
            return last[3]
        text = generate_latest(self.registry)
        self._rendered = (state, snap, moved, text)
        return text

    def route(self) -> Response:
        # The classic text format, which every Prometheus (2.x included) reads.
        return Response(self.metrics_text(), CONTENT_TYPE_PLAIN_0_0_4)


def attach(services: Services) -> Exporter:
    """Add the exporter's refresh job, the job that keeps the refresh failures in DuckDB
    (they continue after a restart) and, if serving, the ``/metrics`` route."""
    refresher = services.refresher
    con = services.engine.store.con
    stored = counters.pipeline_counts(con).get(counters.REFRESH_FAILURES, {})
    for (job, _), n in stored.items():
        refresher.failures[job] = max(refresher.failures[job], n)

    def failures() -> dict[str, int]:
        return {job: refresher.failures[job] for job in (*refresher.jobs, *refresher.failures)}

    exporter = Exporter(
        con,
        services.config,
        services.engine.totals,
        snapshot=lambda: services.published.get("snapshot"),
        clock=lambda: _now(services),
        failures=failures,
        ownership=lambda: services.engine.ownership,
    )
    refresher.add(LIVE_JOB, exporter.live, live=True)
    refresher.add(PUBLISHED, exporter.boards)
    refresher.add(FAILURES_JOB, FailureKeeper(failures), engine=True)
    if services.server is not None:
        services.server.add(ROUTE, exporter.route)
    return exporter


class FailureKeeper:
    """An engine-thread job: writes the refresh failures to DuckDB when they changed."""

    def __init__(self, failures: Callable[[], Mapping[str, int]]) -> None:
        self.failures = failures
        self.written: dict[str, int] = {}

    def __call__(self, con: duckdb.DuckDBPyConnection) -> None:
        now = {job: n for job, n in self.failures().items() if n}
        if now != self.written:
            counters.keep_at_least(con, counters.REFRESH_FAILURES, now)
            self.written = now


def _source_offsets(con: duckdb.DuckDBPyConnection) -> tuple[PartitionOffset, ...]:
    return tuple(
        PartitionOffset(r["topic"], int(r["partition"]), int(r["offset"]), None if r["lag"] is None else int(r["lag"]))
        for r in sqlfiles.dicts(con, "export/source_offsets")
    )


def _now(services: Services) -> datetime:
    return services.engine.clock()


def _call_totals(con: duckdb.DuckDBPyConnection) -> tuple[tuple[float, ...], dict[str, CallTotals]]:
    """The wait-bucket bounds and each queue's stored call counters (sql/export/call_totals.sql)."""
    buckets: dict[str, dict[float, int]] = {}
    for r in sqlfiles.dicts(con, "export/wait_buckets"):
        buckets.setdefault(r["queue"], {})[float(r["le"])] = int(r["calls"])
    # Every queue has a row per bound (schema/seed_counters.sql); a bound a queue lacks would read 0.
    bounds = tuple(sorted({le for per in buckets.values() for le in per})) or WAIT_BUCKETS
    out = {}
    for r in sqlfiles.dicts(con, "export/call_totals"):
        per = buckets.get(r["queue"], {})
        out[r["queue"]] = CallTotals(
            offered=int(r["offered"]),
            answered=int(r["answered"]),
            abandoned=int(r["abandoned"]),
            answered_in_sl=int(r["answered_in_sl"]),
            wait_sum_s=float(r["answer_wait_s"]),
            wait_buckets=tuple(per.get(b, 0) for b in bounds),
        )
    return bounds, out


def _quality_totals(con: duckdb.DuckDBPyConnection) -> dict[str, QualityTotals]:
    """Each queue's stored quality counters and histogram buckets (sql/export/quality_counters.sql)."""
    out = {}
    for r in sqlfiles.dicts(con, "export/quality_counters"):
        per = {(b["measure"], float(b["le"])): int(b["reports"]) for b in r["buckets"]}
        out[r["queue"]] = QualityTotals(
            reports=int(r["reports"]),
            poor=int(r["poor"]),
            mos_count=int(r["mos_count"]),
            mos_sum=float(r["mos_sum"]),
            mos_buckets=tuple(per.get(("mos", b), 0) for b in counters.QUALITY_MOS_BUCKETS),
            jitter_count=int(r["jitter_count"]),
            jitter_sum_s=float(r["jitter_sum_s"]),
            jitter_buckets=tuple(per.get(("jitter_s", b), 0) for b in counters.QUALITY_JITTER_BUCKETS_S),
        )
    return out


def _agent_kpis(con: duckdb.DuckDBPyConnection, watermark: datetime, label: dict[int, str]) -> tuple[AgentKpis, ...]:
    """Per-agent window KPIs and QA scores (sql/export/agent_windows.sql, agent_qa.sql)."""
    windows: dict[str, dict[str, AgentWindow]] = {}
    for r in sqlfiles.dicts(con, "export/agent_windows", wm=watermark, widths=sorted(label)):
        windows.setdefault(r["agent_id"], {})[label[int(r["width_s"])]] = AgentWindow(
            handled=int(r["handled"]),
            aht_s=r["aht_s"],
            occupancy=r["occupancy"],
            not_ready_s={x["reason"]: float(x["seconds"]) for x in r["not_ready"]},
        )
    qa = {r["agent_id"]: r for r in sqlfiles.dicts(con, "export/agent_qa", wm=watermark, qa_s=names.QA_WINDOW_S)}
    return tuple(
        AgentKpis(
            agent,
            windows.get(agent, {}),
            qa_score=qa[agent]["qa_score"] if agent in qa else None,
            qa_evaluations=int(qa[agent]["evaluations"]) if agent in qa else 0,
        )
        for agent in sorted(windows.keys() | qa.keys())
    )
