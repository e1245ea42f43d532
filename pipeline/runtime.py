"""What runs beside the engine in a long-lived process (`demo`, `worker`): the
refresher that publishes snapshots after batches, and the HTTP server.

Each feature attaches itself here with one call: it adds refresh jobs (read-only ones run on
the refresher's own thread and DuckDB connection, so a batch never waits for a board;
jobs that write, on the engine's thread) and HTTP routes (which only read what the jobs
published).
"""

from __future__ import annotations

from dataclasses import dataclass

from dashboards import wallboard
from metrics import exporter
from metrics.snapshot import take_snapshot
from pipeline import analyst
from pipeline.config import Config
from pipeline.engine import Engine
from pipeline.server import HttpServer, Published, Refresher


@dataclass(slots=True)
class Services:
    engine: Engine
    config: Config
    published: Published
    refresher: Refresher
    server: HttpServer | None

    def close(self) -> None:
        self.refresher.stop()
        if self.server is not None:
            self.server.stop()


def start_services(engine: Engine, config: Config, serve: bool = True, refresh_every_s: float = 1.0) -> Services:
    """Attach the snapshot refresher (and, with ``serve``, the HTTP server) to ``engine``."""
    published = Published()
    refresher = Refresher(engine.store.con, published, every_s=refresh_every_s)
    refresher.add("snapshot", lambda con: take_snapshot(con, config.windows))
    engine.subscribe(refresher)
    server = HttpServer(config.exporter.host, config.exporter.port) if serve else None
    services = Services(engine, config, published, refresher, server)
    # Features attach here, one line each (they add refresh jobs and routes).
    # -- attach: exporter (metrics/exporter.py) --
    exporter.attach(services)
    # -- attach: wallboard (dashboards/wallboard.py) --
    wallboard.attach(services)
    # -- attach: analyst snapshot (pipeline/analyst.py) --
    analyst.attach(services)
    refresher.refresh_now()
    refresher.start_background()  # every_s 0 (tests, tools): stays after every batch, on this thread
    if server is not None:
        server.start()
    return services
