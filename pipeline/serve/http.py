"""The small HTTP server of `callpulse demo` / `worker`: fixed routes (/metrics, the
wallboard page and its JSON) served from a background thread, on 127.0.0.1 unless told
otherwise. Handlers only read what the refresher published (pipeline/serve/refresher.py),
so a slow client can never block or endanger ingestion.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from pipeline.core.errors import OperatorError


@dataclass(frozen=True, slots=True)
class Response:
    body: bytes
    content_type: str = "text/plain; charset=utf-8"
    status: int = 200


Route = Callable[[], Response]


class HttpServer:
    """Serves fixed routes from a background thread; ``start()`` / ``stop()``."""

    def __init__(self, host: str = "127.0.0.1", port: int = 9464) -> None:
        self.routes: dict[str, Route] = {}
        routes = self.routes

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                route = routes.get(self.path.split("?", 1)[0])
                try:
                    response = route() if route else Response(b"not found\n", status=404)
                except Exception as exc:  # noqa: BLE001 - a handler bug must not kill the server
                    response = Response(f"error: {exc.__class__.__name__}\n".encode(), status=500)
                self.send_response(response.status)
                self.send_header("Content-Type", response.content_type)
                self.send_header("Content-Length", str(len(response.body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(response.body)

            def log_message(self, format: str, *args: Any) -> None:  # quiet by default
                return

        try:
            self._server = ThreadingHTTPServer((host, port), Handler)
        except OSError as exc:
            raise OperatorError(
                f"{host}:{port}: cannot serve /metrics and the wallboard there ({exc.strerror or exc}); "
                "set [exporter] port (and host) in callpulse.toml, or pass --no-serve"
            ) from None
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def add(self, path: str, route: Route) -> None:
        self.routes[path] = route

    def start(self) -> HttpServer:
        self._thread = threading.Thread(target=self._server.serve_forever, name="callpulse-http", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join(timeout=5)
