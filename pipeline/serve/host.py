"""The host that features attach to in a long-lived process (`demo`, `worker`): the engine,
the config, the refresher that publishes results after batches, and the HTTP server.

A feature (the exporter, the wallboard, the analysts' copy) attaches itself with one
call: it adds refresh jobs (read-only ones run on the refresher's own thread and DuckDB
connection, so a batch never waits for a board; jobs that write, on the engine's thread)
and HTTP routes (which only read what the jobs published). The wiring that attaches them
lives on top, in pipeline/cli/services.py, so no feature imports another.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.core.config import Config
from pipeline.core.engine import Engine
from pipeline.serve.http import HttpServer
from pipeline.serve.refresher import Published, Refresher


@dataclass(slots=True)
class Services:
    engine: Engine
    config: Config
    published: Published
    refresher: Refresher
    server: HttpServer | None

    def close(self) -> None:
        self.engine.drain()
        self.refresher.stop()
        if self.server is not None:
            self.server.stop()
