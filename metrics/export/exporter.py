"""``/metrics``: attaches the KPI collector, the breach detector and their refresh job to
the runtime services (pipeline/serve/host.py).

Threads: ``Exporter.refresh`` is a refresher job, so it runs on the refresher's thread
and connection (pipeline/serve/http.py; the engine's, with ``every_s`` 0): it runs the
breach detector, reads the running call totals, wait histogram, occupancy and (with
``per_agent``) each agent's state, window KPIs and QA score, copies the engine's
counters and publishes one immutable ``ExportState``. The HTTP handler only formats
what was published (``generate_latest`` on the exporter's own registry).

Served on the [exporter] host/port of the config (127.0.0.1:9464 by default) by the
services' HTTP server.
"""

from __future__ import annotations

import bisect
from collections import Counter
from datetime import datetime
from typing import Any

import duckdb
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from metrics.export import names
from metrics.export.collector import (
    BATCH_BUCKETS,
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
from metrics.kpi.breaches import BreachDetector
from metrics.kpi.snapshot import KpiSnapshot
from pipeline.core import sqlfiles
from pipeline.core.config import Config
from pipeline.core.engine import Totals
from pipeline.serve.host import Services
from pipeline.serve.http import Response

PUBLISHED = "exporter"
ROUTE = "/metrics"


class HealthTracker:
    """Bounded-label copies of the engine's running totals; the batch-duration
    histogram is kept incrementally (each batch time is read once)."""

    def __init__(self) -> None:
        self._seen = 0
        self._buckets = [0] * len(BATCH_BUCKETS)
        self._count = 0
        self._sum = 0.0

    def update(self, totals: Totals) -> Health:
        new = totals.batch_seconds_since(self._seen)
        self._seen = totals.batches
        for seconds in new:
            first = bisect.bisect_left(BATCH_BUCKETS, seconds)
            for i in range(first, len(BATCH_BUCKETS)):
                self._buckets[i] += 1
            self._count += 1
            self._sum += seconds
        ingested: Counter[str] = Counter()
        for source, n in totals.accepted_by_source.items():
            ingested[source_kind(source)] += n
        duplicates: Counter[str] = Counter()
        for source, n in totals.duplicates_by_source.items():
            duplicates[source_kind(source)] += n
        dead: Counter[tuple[str, str]] = Counter()
        for (source, reason), n in totals.dead_by_source_reason.items():
            dead[(source_kind(source), reason_label(reason))] += n
        return Health(
            dict(ingested),
            dict(duplicates),
            dict(dead),
            tuple(self._buckets),
            self._count,
            self._sum,
        )


class Exporter:
    """The exporter of one engine: registry, collector, breach detector, refresh job."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        config: Config,
        totals: Totals,
        snapshot: Any = None,
        clock: Any = None,
    ) -> None:
        self.config = config
        self.totals = totals
        self.snapshot = snapshot or (lambda: None)
        self.detector = BreachDetector(con, config.windows, config.exporter.breach_hold_s)
        self.health = HealthTracker()
        self.state: ExportState | None = None
        self.collector = KpiCollector(lambda: self.state, clock=clock, per_agent=config.exporter.per_agent)
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(self.collector)

    def refresh(self, con: duckdb.DuckDBPyConnection) -> ExportState:
        """Build (and keep) the state the next scrapes show; the refresher's thread only."""
        breaches = self.detector(con)
        snap: KpiSnapshot | None = self.snapshot()
        bounds = wait_bounds(t.sl_threshold_s for t in _targets(snap))
        calls = _call_totals(con, bounds)
        occupancy: dict[tuple[str, str], float | None] = {}
        agents: tuple[AgentRow, ...] | None = None
        agent_kpis: tuple[AgentKpis, ...] = ()
        watermark = snap.watermark if snap is not None else None
        if watermark is not None:
            label = {w: name for name, w in self.config.windows}
            params = {"wm": watermark, "widths": sorted(label)}
            for r in sqlfiles.dicts(con, "export/queue_occupancy", **params):
                occupancy[(r["queue"], label[int(r["width_s"])])] = r["occupancy"]
            if self.config.exporter.per_agent:
                agents = tuple(
                    AgentRow(r["agent_id"], r["state"], r["reason"]) for r in sqlfiles.dicts(con, "export/agent_states")
                )
                agent_kpis = _agent_kpis(con, watermark, label)
        self.state = ExportState(
            snapshot=snap,
            calls=calls,
            wait_bounds=bounds,
            occupancy=occupancy,
            breaches=breaches,
            health=self.health.update(self.totals),
            agents=agents,
            agent_kpis=agent_kpis,
        )
        return self.state

    def metrics_text(self) -> bytes:
        return generate_latest(self.registry)

    def route(self) -> Response:
        # The classic text format, which every Prometheus (2.x included) reads.
        return Response(self.metrics_text(), CONTENT_TYPE_PLAIN_0_0_4)


def attach(services: Services) -> Exporter:
    """Add the exporter's refresh job and, if serving, the ``/metrics`` route."""
    exporter = Exporter(
        services.engine.store.con,
        services.config,
        services.engine.totals,
        snapshot=lambda: services.published.get("snapshot"),
        clock=lambda: _now(services),
    )
    services.refresher.add(PUBLISHED, exporter.refresh)
    if services.server is not None:
        services.server.add(ROUTE, exporter.route)
    return exporter


def _now(services: Services) -> datetime:
    return services.engine.clock()


def _targets(snap: KpiSnapshot | None) -> list[Any]:
    return [q.targets for q in snap.queues.values()] if snap is not None else []


def _call_totals(con: duckdb.DuckDBPyConnection, bounds: tuple[float, ...]) -> dict[str, CallTotals]:
    buckets: dict[str, dict[float, int]] = {}
    for r in sqlfiles.dicts(con, "export/wait_buckets", bounds=list(bounds)):
        buckets.setdefault(r["queue"], {})[float(r["le"])] = int(r["calls"])
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
