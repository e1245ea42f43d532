"""Real Prometheus and Alertmanager servers (Debian's binaries) for tests, plus a tiny
webhook receiver that records what Alertmanager delivers.

Each server writes its config and data into its own temporary directory, listens on a
free port on 127.0.0.1 only, is ready when ``/-/ready`` answers 200, and is stopped (its
process group killed, its directory deleted) by ``stop()`` or on leaving a ``with``.
HTTP is done with urllib only.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NamedTuple, Self

from devtools.procs import (
    LOOPBACK,
    ManagedProcess,
    ServiceError,
    StartStop,
    free_port,
    refuse_if_services_off,
    wait_until,
)

START_TIMEOUT = 30.0

# Debian names the Alertmanager binary prometheus-alertmanager; upstream calls it
# alertmanager. Each tool: (names to look for, Debian package that ships it).
_BINARIES: dict[str, tuple[tuple[str, ...], str]] = {
    "prometheus": (("prometheus",), "prometheus"),
    "promtool": (("promtool",), "prometheus"),
    "alertmanager": (("alertmanager", "prometheus-alertmanager"), "prometheus-alertmanager"),
    "amtool": (("amtool",), "prometheus-alertmanager"),
}
_SEARCH_DIRS = (Path("/usr/bin"), Path("/usr/local/bin"), Path("/usr/sbin"))


def find_binary(name: str) -> Path:
    """Path of ``prometheus``, ``promtool``, ``alertmanager`` or ``amtool``.

    Looks on PATH, then in the Debian locations. Raises ``ServiceError`` naming the apt
    package to install when it is missing.
    """
    try:
        candidates, package = _BINARIES[name]
    except KeyError:
        raise ValueError(f"unknown binary {name!r}; expected one of {sorted(_BINARIES)}") from None
    refuse_if_services_off(name)
    for candidate in candidates:
        found = shutil.which(candidate)
        if found:
            return Path(found)
        for directory in _SEARCH_DIRS:
            path = directory / candidate
            if path.is_file():
                return path
    raise ServiceError(
        f"{name} is not installed; install it with: "
        f"apt-get install -y --no-install-recommends {package} "
        "(or run scripts/setup-test-deps.sh)"
    )


@dataclass(frozen=True)
class Tool:
    """``promtool`` or ``amtool``, run to the end with text output."""

    path: Path

    def __call__(
        self, *args: str | Path, stdin: str | None = None, cwd: Path | None = None, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.path), *map(str, args)],
            input=stdin,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def ok(
        self, *args: str | Path, stdin: str | None = None, cwd: Path | None = None, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        """Run; fail the test (showing the command and its output) unless it exits 0."""
        done = self(*args, stdin=stdin, cwd=cwd, timeout=timeout)
        assert done.returncode == 0, f"{' '.join(done.args)}\n{done.stdout}\n{done.stderr}"
        return done


def scrape_config(job: str, target: str) -> str:
    """A Prometheus config that scrapes ``target`` (host:port) every second as ``job``."""
    return f"""
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: {job}
    static_configs:
      - targets: ["{target}"]
"""


def webhook_alertmanager_config(url: str, group_by: Sequence[str], *, send_resolved: bool) -> str:
    """An Alertmanager config that sends every alert at once to the webhook at ``url``."""
    return f"""
route:
  receiver: hook
  group_by: {json.dumps(list(group_by))}
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: "{url}"
        send_resolved: {json.dumps(send_resolved)}
"""


# --------------------------------------------------------------------------- HTTP


def http_json(url: str, *, method: str = "GET", body: Any = None, timeout: float = 5.0) -> Any:
    """Send a request (JSON body if given) and decode a JSON response ('' -> None)."""
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"} if data is not None else {}
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")
        raise ServiceError(f"{method} {url} -> HTTP {exc.code}: {detail}") from exc
    return json.loads(raw) if raw.strip() else None


def http_ok(url: str, timeout: float = 2.0) -> bool:
    """True if GET ``url`` answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


class Sample(NamedTuple):
    """One series of an instant query result."""

    labels: dict[str, str]
    value: float
    timestamp: float


# --------------------------------------------------------------------------- servers


class _Server(StartStop):
    """Shared lifecycle: temp dir, free port, process, readiness on ``/-/ready``."""

    kind = "server"

    def __init__(self, start_timeout: float = START_TIMEOUT) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix=f"callpulse-{self.kind}-"))
        self.port = free_port()
        self.start_timeout = start_timeout
        self.process: ManagedProcess | None = None
        self.startup_seconds: float | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def _argv(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> Self:
        began = time.monotonic()
        self.process = ManagedProcess(
            self._argv(), self.dir / f"{self.kind}.log", name=f"{self.kind} at {self.url}"
        ).start()
        self.process.wait_ready(
            lambda: http_ok(f"{self.url}/-/ready"),
            self.start_timeout,
            f"{self.kind} at {self.url}/-/ready",
        )
        self.startup_seconds = time.monotonic() - began
        return self

    def stop(self) -> None:
        try:
            if self.process is not None:
                self.process.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


class PrometheusServer(_Server):
    """``prometheus`` with the given config text and rule files, on a free port.

    ``rule_files`` are referenced by absolute path (edit them, then ``reload()``); they
    are appended as a ``rule_files:`` section, so the config must not have one already.
    """

    kind = "prometheus"

    def __init__(
        self,
        config_yaml: str,
        rule_files: Sequence[Path] = (),
        *,
        start_timeout: float = START_TIMEOUT,
    ) -> None:
        if rule_files and "rule_files:" in config_yaml:
            raise ValueError("pass rule files either in config_yaml or as rule_files, not both")
        self.binary = find_binary("prometheus")
        super().__init__(start_timeout)
        self.rule_files = [Path(p).resolve() for p in rule_files]
        text = config_yaml.rstrip() + "\n"
        if self.rule_files:
            text += "rule_files:\n" + "".join(f"  - {json.dumps(str(p))}\n" for p in self.rule_files)
        self.config_path = self.dir / "prometheus.yml"
        self.config_path.write_text(text)

    def _argv(self) -> list[str]:
        return [
            str(self.binary),
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.dir / 'data'}",
            f"--web.listen-address={LOOPBACK}:{self.port}",
            "--web.enable-lifecycle",
            # Keep every path inside the temp dir, away from /etc and /var/lib.
            f"--web.console.templates={self.dir / 'consoles'}",
            f"--web.console.libraries={self.dir / 'console_libraries'}",
            "--storage.tsdb.retention.time=1d",
            "--log.level=info",
        ]

    def query(self, promql: str, timeout: float = 5.0) -> list[Sample]:
        """Instant query (``/api/v1/query``); vector results as ``Sample`` rows,
        a scalar as one ``Sample`` with no labels."""
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        reply = http_json(url, timeout=timeout)
        if reply.get("status") != "success":
            raise ServiceError(f"query {promql!r} failed: {reply}")
        data = reply["data"]
        if data["resultType"] in ("scalar", "string"):
            ts, value = data["result"]
            return [Sample({}, float(value), float(ts))]
        return [Sample(dict(row["metric"]), float(row["value"][1]), float(row["value"][0])) for row in data["result"]]

    def wait_for_series(
        self,
        promql: str,
        predicate: Callable[[list[Sample]], bool] = bool,
        timeout: float = 30.0,
    ) -> list[Sample]:
        """Poll ``query(promql)`` until ``predicate(result)`` holds (default: non-empty)."""
        box: list[list[Sample]] = []

        def check() -> bool:
            result = self.query(promql)
            box[:] = [result]
            return predicate(result)

        try:
            wait_until(check, timeout, f"PromQL {promql!r} to match")
        except TimeoutError as exc:
            last = box[0] if box else "no answer"
            raise TimeoutError(f"{exc}; last result: {last}") from exc
        return box[0]

    def alerts(self) -> list[dict[str, Any]]:
        """Active (pending and firing) alerts from ``/api/v1/alerts``."""
        return list(http_json(f"{self.url}/api/v1/alerts")["data"]["alerts"])

    def targets(self) -> list[dict[str, Any]]:
        """Active scrape targets from ``/api/v1/targets``."""
        return list(http_json(f"{self.url}/api/v1/targets")["data"]["activeTargets"])

    def reload(self) -> None:
        """Re-read config and rule files (``POST /-/reload``)."""
        http_json(f"{self.url}/-/reload", method="POST")


class AlertmanagerServer(_Server):
    """``alertmanager`` with the given config text, on a free port, clustering off.

    Alertmanager waits ``group_wait`` (30 s by default) before a first notification:
    test configs should set ``group_wait: 0s`` or similar on their route.
    """

    kind = "alertmanager"

    def __init__(self, config_yaml: str, *, start_timeout: float = START_TIMEOUT) -> None:
        self.binary = find_binary("alertmanager")
        super().__init__(start_timeout)
        self.config_path = self.dir / "alertmanager.yml"
        self.config_path.write_text(config_yaml)

    def _argv(self) -> list[str]:
        return [
            str(self.binary),
            f"--config.file={self.config_path}",
            f"--storage.path={self.dir / 'data'}",
            f"--web.listen-address={LOOPBACK}:{self.port}",
            "--cluster.listen-address=",  # empty: no gossip port, no clustering
            "--log.level=info",
        ]

    def post_alerts(self, alerts: Iterable[dict[str, Any]]) -> None:
        """``POST /api/v2/alerts`` (each alert: labels, annotations, startsAt, ...)."""
        http_json(f"{self.url}/api/v2/alerts", method="POST", body=list(alerts))

    def alerts(self) -> list[dict[str, Any]]:
        """Alerts Alertmanager currently holds (``GET /api/v2/alerts``)."""
        return list(http_json(f"{self.url}/api/v2/alerts"))


# --------------------------------------------------------------------------- webhook


class WebhookReceiver(StartStop):
    """An HTTP server on 127.0.0.1 that records every JSON body POSTed to it.

    Point an Alertmanager ``webhook_configs`` receiver at ``url``; ``payloads`` holds what
    arrived, ``wait_for(predicate)`` polls for one payload that matches.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._payloads: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    payload = json.loads(raw) if raw else {}
                except json.JSONDecodeError:
                    payload = {"_raw": raw.decode(errors="replace")}
                with receiver._lock:
                    receiver._payloads.append(payload)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass  # keep test output clean

        self._server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/"

    @property
    def payloads(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._payloads)

    def start(self) -> Self:
        self._thread = threading.Thread(target=self._server.serve_forever, name="webhook-receiver", daemon=True)
        self._thread.start()
        return self

    def wait_for(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 30.0) -> dict[str, Any]:
        """The first recorded payload for which ``predicate`` holds, polling until
        ``timeout``; the error lists what did arrive."""

        def match() -> dict[str, Any] | None:
            return next((p for p in self.payloads if predicate(p)), None)

        try:
            found = wait_until(match, timeout, f"a matching webhook payload at {self.url}")
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}; received: {self.payloads}") from exc
        assert isinstance(found, dict)
        return found

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()
