"""Process helpers for tests that run real services: free ports, polling, subprocesses.

Nothing here sleeps for a fixed time to "let a service start": readiness is always a
condition polled with a deadline (``wait_until``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, NoReturn, Self

LOOPBACK = "127.0.0.1"
# Set (to anything but "" or "0") by `make unit`: a test that reaches for a real service
# without carrying its marker then fails there, instead of quietly needing the service.
NO_SERVICES = "CALLPULSE_NO_SERVICES"


class ServiceError(RuntimeError):
    """A real service could not be installed, started or reached."""


def refuse_if_services_off(service: str) -> None:
    """Raise ``ServiceError`` if ``$CALLPULSE_NO_SERVICES`` forbids starting ``service``."""
    if os.environ.get(NO_SERVICES, "") not in ("", "0"):
        raise ServiceError(
            f"{service} is a real service and {NO_SERVICES} is set (make unit): "
            "mark the test kafka, prometheus or chromium, or use the fixture that marks it"
        )


class StartStop:
    """``with thing:`` starts it and stops it on leaving; a start that fails half-way is
    stopped too, so nothing it launched outlives the error. Subclasses define both."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> object:
        raise NotImplementedError

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago (bind to port 0, read, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = LOOPBACK, timeout: float = 0.5) -> bool:
    """True if something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until(
    predicate: Callable[[], object],
    timeout: float,
    what: str,
    interval: float = 0.1,
    on_poll: Callable[[], None] | None = None,
) -> object:
    """Poll ``predicate`` until it returns a truthy value; return that value.

    Exceptions from the predicate count as "not yet" (the last one is chained into the
    error). ``on_poll`` runs before each poll and may raise to abort early (used to notice
    that the process under test died). On timeout raises ``TimeoutError`` naming ``what``.
    """
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    while True:
        if on_poll is not None:
            on_poll()
        try:
            result = predicate()
        except Exception as exc:  # noqa: BLE001 - any failure just means "not ready"
            last_exc = exc
        else:
            if result:
                return result
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_exc!r})" if last_exc is not None else ""
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}{detail}") from (last_exc)
        time.sleep(interval)


def tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a text file ('' if it does not exist)."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class ManagedProcess(StartStop):
    """A subprocess in its own process group, output to a log file.

    ``start()`` launches it; ``stop()`` sends SIGTERM to the whole group, then SIGKILL
    after ``stop_timeout`` seconds. Usable as a context manager (start on enter, stop on
    exit). ``fail(msg)`` raises a ``ServiceError`` carrying the tail of the log (and of
    ``extra_logs``, files the service writes on its own).
    """

    def __init__(
        self,
        argv: Sequence[str | os.PathLike[str]],
        log_path: Path,
        *,
        name: str | None = None,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        stop_timeout: float = 15.0,
        extra_logs: Sequence[Path] = (),
    ) -> None:
        self.argv = [os.fspath(a) for a in argv]
        self.log_path = log_path
        self.name = name or Path(self.argv[0]).name
        self.cwd = cwd
        self.env = dict(env) if env is not None else None
        self.stop_timeout = stop_timeout
        self.extra_logs = list(extra_logs)
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> Self:
        if self.running():
            raise ServiceError(f"{self.name} is already running (pid {self.pid})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        try:
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                cwd=self.cwd,
                env=self.env,
                start_new_session=True,  # own session => own process group
            )
        except OSError as exc:
            self._close_log()
            raise ServiceError(f"could not run {self.argv[0]!r} for {self.name}: {exc}") from exc
        return self

    def check_alive(self) -> None:
        """Raise (with the log tail) if the process has exited."""
        if self.proc is None:
            raise ServiceError(f"{self.name} was never started")
        code = self.proc.poll()
        if code is not None:
            self.fail(f"{self.name} exited with code {code} during start-up")

    def wait_ready(self, predicate: Callable[[], object], timeout: float, what: str) -> None:
        """Poll ``predicate`` while checking the process stays alive; on failure stop it
        and raise a ``ServiceError`` with the log tail."""
        try:
            wait_until(predicate, timeout, what, on_poll=self.check_alive)
        except ServiceError:
            self.stop()
            raise
        except TimeoutError as exc:
            self.stop()
            self.fail(str(exc))

    def fail(self, message: str) -> NoReturn:
        """Raise a ``ServiceError`` with ``message`` and the tail of every log."""
        parts = [message]
        for path in [self.log_path, *self.extra_logs]:
            parts.append(f"--- last lines of {path} ---\n{tail(path) or '(empty or missing)'}")
        raise ServiceError("\n".join(parts))

    def stop(self) -> int | None:
        """Stop the whole process group; return the exit code (None if never started)."""
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                proc.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                proc.wait(timeout=10)
        # Children that outlived the leader (same group) get no second chance.
        self._signal_group(signal.SIGKILL)
        self._close_log()
        return proc.returncode

    def _signal_group(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None
