"""Wiring of a long-lived process (`demo`, `worker`): the host (pipeline/serve/host.py)
with every feature attached, one line each."""

from __future__ import annotations

import sys

import duckdb

from dashboards import wallboard
from metrics.export import exporter
from metrics.kpi import breaches
from metrics.kpi.snapshot import KpiSnapshot, owned_only, take_snapshot
from pipeline.core.config import Config
from pipeline.core.engine import Engine
from pipeline.ops import analyst_copy, parquet_store
from pipeline.serve.host import Services
from pipeline.serve.http import HttpServer
from pipeline.serve.refresher import Published, Refresher, at_most_every

# How long a thread may hold the GIL while another waits for it (Python's default: 5 ms).
# The engine thread gives the GIL up in every DuckDB and polars call of a batch (about 30
# statements and 75 frame operations) and needs it back after each, while the consumer,
# publisher, refresher and HTTP threads run Python; at the default each return could wait
# up to 5 ms, which showed in the event → /metrics latency (docs/benchmarks.md).
GIL_SWITCH_S = 0.0005
# How often a long-running process recomputes the intervals its batches listed
# (Store.defer_intervals). A recompute reads every call and agent event of the intervals
# listed, which at a live rate are the current ones whatever ran since the last: it costs
# about what a batch costs however rarely it runs, and the batch after it waits for it on
# the engine thread. No live reader shows the intervals (reports read them from the
# analysts' copy, which, like retention, recomputes first): every few seconds, not every
# second, leaves the batches most of that time (docs/benchmarks.md).
INTERVALS_EVERY_S = 5.0


def start_services(engine: Engine, config: Config, serve: bool = True, refresh_every_s: float = 1.0) -> Services:
    """Attach the snapshot refresher (and, with ``serve``, the HTTP server) to ``engine``;
    the process's threads then hand the GIL over every GIL_SWITCH_S."""
    sys.setswitchinterval(GIL_SWITCH_S)
    published = Published()
    refresher = Refresher(engine.store.con, published, every_s=refresh_every_s)
    # The live jobs read no stored breach (the boards judge the snapshot's KPIs): a batch is
    # pushed to the publisher before the breach check runs on the engine thread, which once
    # a second would hold that batch's tiles and counters back.
    engine.subscribe(refresher.push)
    # Before the refresher's cycle: a batch's breaches are decided before the boards read them.
    breaches.attach(engine, every_s=refresh_every_s)
    engine.subscribe(refresher)
    if refresh_every_s > 0:
        # The interval aggregates (reports, the analysts' copy) are recomputed after the
        # commits, every INTERVALS_EVERY_S, not inside every batch: the live tiles and
        # counters read the calls, so each batch reaches them sooner. The analysts' copy
        # and retention recompute before they read (analyst_copy.attach).
        engine.store.defer_intervals = True
        refresher.add("intervals", at_most_every(INTERVALS_EVERY_S, engine.store.recompute_intervals), engine=True)
    server = HttpServer(config.exporter.host, config.exporter.port) if serve else None
    services = Services(engine, config, published, refresher, server)
    # The live jobs run in this order after every commit: /metrics' counters first (small
    # tables: a stored call is counted without waiting for the snapshot's queries), then
    # the snapshot, then the wallboard's tiles, which read it. The boards' heavier reads
    # stay on the refresher. A worker sharing the queues of a group shows its own
    # (engine.ownership, read at each refresh). No live reader shows the current interval's
    # KPIs (the tiles and /metrics show rolling windows): the snapshot leaves them out.
    exporter.attach(services)

    def snapshot(con: duckdb.DuckDBPyConnection) -> KpiSnapshot:
        return owned_only(take_snapshot(con, config.windows, current_interval=False), engine.ownership.owns_queue)

    refresher.add("snapshot", snapshot, live=True)
    wallboard.attach(services)
    analyst_copy.attach(services)
    parquet_store.attach_configured(engine)  # [analyst] parquet: the shared store of several workers
    refresher.refresh_now()
    refresher.start_background()  # every_s 0 (tests, tools): stays after every batch, on this thread
    if server is not None:
        server.start()
    return services
