"""Analysts query a read-only copy of the database, never the file the pipeline writes.

DuckDB lets one process write a file and no other process open it meanwhile, so
analysts get their own file beside it: ``data/callpulse.analyst.duckdb`` (config
``[analyst] copy``). In a running pipeline (`demo`, `worker`) a refresh job on
the engine thread checkpoints the database and a helper thread copies its file
(pipeline/ops/backup.py says why that is consistent) at most every
``[analyst] freshness`` seconds (default 60), then renames it over the old one:
readers holding the old file keep reading it, new readers get the new one, and
nobody ever sees half a copy. ``snapshot_info`` in the file says when it was
taken and up to which event time (watermark) it holds data.

When no pipeline is running (after `callpulse replay`), `callpulse sql` and
`callpulse report` bring the copy up to date from the database file first;
while one is running they read the copy as it is.

A backup of a running pipeline is an analysts' copy made on request: `callpulse backup`
drops a request file beside the copy, the refresh job makes a fresh copy at the
next batch boundary and the command copies that.

("Snapshot" in callpulse means the KPI snapshot, metrics/kpi/snapshot.py; the analysts'
file is always the "copy". Its info table keeps its old name, ``snapshot_info``, as
analysts' queries and existing backups use it.)
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from pipeline.core import dbfile, sqlfiles
from pipeline.core.config import Config
from pipeline.core.errors import OperatorError, first_line, not_a_directory
from pipeline.core.store import Store
from pipeline.ops import backup, retention
from pipeline.serve.refresher import lower_thread_priority

RETENTION_EVERY_S = 3600.0
# The table-by-table fallback reads the whole database (seconds on a month of history): its
# thread gives way to the engine (the live path users watch) and to the refresher.
COPY_NICENESS = 15
# A checkpoint is refused while another connection's transaction has written (the boards'
# readers fill temp tables); such transactions are brief, so the next call tries again.
CHECKPOINT_TRIES = 20
COPY_KIND = "copy"  # snapshot_info.kind of the analysts' copy (a backup's is "backup")
log = logging.getLogger("callpulse.analyst")


def copy_path(config: Config) -> Path:
    if config.analyst.copy is not None:
        return config.analyst.copy
    return config.db.with_name(config.db.stem + ".analyst.duckdb")


def request_path(config: Config) -> Path:
    snap = copy_path(config)
    return snap.with_name(snap.name + ".request")


class AnalystError(OperatorError):
    """A problem to show the analyst as one clear line (no traceback)."""


class CopyJob:
    """A refresh job (engine thread): retention now and then, a fresh copy at most every
    ``freshness`` seconds or when a backup asks for one. Publishes the last ``CopyInfo``.

    The engine thread checkpoints between two batches, so the database file holds
    exactly the batches committed until then, and holds off automatic checkpoints; a
    helper thread copies the file while the engine goes on storing batches (into the
    WAL), then lets checkpoints resume. One copy at a time; the writer connection itself
    never leaves the engine thread. ``threaded=False`` copies on the engine thread instead.
    """

    def __init__(
        self, config: Config, clock: Any = None, threaded: bool = True, settle: Callable[[], None] | None = None
    ) -> None:
        self.config = config
        # brings what the batches left to do up to date before retention or a copy reads
        # the database (the pipeline's deferred interval recompute)
        self.settle = settle or (lambda: None)
        self.threaded = threaded
        self._thread: threading.Thread | None = None
        self.errors: list[str] = []
        self.block_ms: list[float] = []
        self.path = copy_path(config)
        self.request = request_path(config)
        self._clock = clock or (lambda: datetime.now(UTC))
        self._last_copy = float("-inf")
        self._last_retention = float("-inf")
        self._wanted = False  # a copy is due (or asked for) but has not started yet
        self._refused = 0  # checkpoints refused in a row
        self.last: backup.CopyInfo | None = None
        self.copy_ms: list[float] = []

    def __call__(self, con: duckdb.DuckDBPyConnection) -> backup.CopyInfo | None:
        now = time.monotonic()
        days = self.config.analyst.retention_days
        if days is not None and now - self._last_retention >= RETENTION_EVERY_S:
            self._last_retention = now
            self.settle()
            retention.apply(con, days, self._clock())
        if self._thread is not None and self._thread.is_alive():
            return self.last
        if self.request.exists():
            self.request.unlink(missing_ok=True)  # before copying: a later request waits for the next one
            self._wanted = True
        if self._wanted or now - self._last_copy >= self.config.analyst.freshness_s:
            self.settle()
            started = time.perf_counter()  # what the engine waits for the copy: its checkpoint
            self._wanted = not self._start_copy(con)
            if not self._wanted:
                self._last_copy = now
            self.block_ms.append((time.perf_counter() - started) * 1000)
        return self.last

    def _start_copy(self, con: duckdb.DuckDBPyConnection) -> bool:
        """Checkpoint on the engine thread (between batches), then copy the file on a helper
        thread while the engine goes on. False: the checkpoint was refused, try at the next
        call; after CHECKPOINT_TRIES refusals in a row, the table-by-table copy instead."""
        taken_at = datetime.now(UTC)
        started = time.perf_counter()
        try:
            backup.hold_checkpoints(con)
        except duckdb.Error as exc:
            self._refused += 1
            if self._refused < CHECKPOINT_TRIES:
                return False
            log.warning("analyst copy: cannot checkpoint (%s); copying table by table", exc)
            self._refused = 0
            self._start(con, self._copy_tables)
            return True
        self._refused = 0
        held_ms = (time.perf_counter() - started) * 1000
        # Released on the helper's own connection: while it is open, the database cannot
        # close either, and closing checkpoints.
        self._start(con, self._copy_file, taken_at, held_ms)
        return True

    def _start(self, con: duckdb.DuckDBPyConnection, copy: Any, *args: Any) -> None:
        """Run ``copy(connection, *args)``: on a helper thread through a second connection,
        closed after it, or (``threaded=False``) on this thread through ``con``."""
        if not self.threaded:
            copy(con, *args)
            return
        own = self._second_connection(con)

        def run() -> None:
            try:
                copy(own, *args)
            finally:
                own.close()

        self._thread = threading.Thread(target=run, name="callpulse-analyst-copy")
        self._thread.start()

    def _second_connection(self, con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
        """Another connection to the same open database (DuckDB shares one instance per file
        in a process). Not a cursor of ``con``: closing the engine while a copy is in flight
        would be refused ("connection is busy"); this way the copy finishes on its own."""
        try:
            other = duckdb.connect(str(self.config.db))
        except duckdb.Error:  # a differently configured instance: a cursor still works
            return con.cursor()
        sqlfiles.run(other, "analyst/copy_session")
        return other

    def _copy_file(self, con: duckdb.DuckDBPyConnection, taken_at: datetime, held_ms: float) -> None:
        try:
            self._record(lambda: backup.copy_checkpointed(self.config.db, self.path, COPY_KIND, taken_at, held_ms))
        finally:
            try:
                backup.release_checkpoints(con)
            except duckdb.Error as exc:  # the database closed meanwhile: nothing left to release
                log.warning("analyst copy: cannot restore automatic checkpoints: %s", exc)

    def _copy_tables(self, con: duckdb.DuckDBPyConnection) -> None:
        if self.threaded:  # reads the whole database: gives way to the engine and the refresher
            lower_thread_priority(COPY_NICENESS)
        self._record(lambda: backup.copy_live(con, self.path, COPY_KIND, self.config.db))

    def _record(self, copy: Any) -> None:
        try:
            info = copy()
            self.last = info
            self.copy_ms.append(info.copy_ms)
        except Exception as exc:  # noqa: BLE001 - a failed copy must never stop ingestion
            self.errors.append(f"{exc.__class__.__name__}: {exc}")
            log.warning("analyst copy failed: %s: %s", exc.__class__.__name__, exc, exc_info=True)

    def wait(self, timeout: float | None = None) -> None:
        """Wait for a copy in flight (tests, shutdown)."""
        if self._thread is not None:
            self._thread.join(timeout)


def attach(services: Any) -> CopyJob | None:
    """Add the analyst copy job to a running pipeline's refresher (see pipeline/serve/host.py).
    An in-memory database gets none: there is no file beside which to put it."""
    current = sqlfiles.first(services.engine.store.con, "ops/current_database")
    if current is None or not current[1]:
        return None
    config = services.config
    if config.analyst.copy is None:
        config = replace(config, db=Path(current[1]))
    job = CopyJob(config, settle=services.engine.store.recompute_intervals)
    services.refresher.add("analyst_copy", job, engine=True)  # retention writes
    return job


@dataclass(frozen=True, slots=True)
class Opened:
    """A read-only analyst connection and what it holds."""

    con: duckdb.DuckDBPyConnection
    path: Path
    taken_at: datetime | None
    watermark: datetime | None
    pipeline_running: bool

    def freshness_line(self, now: datetime | None = None) -> str:
        now = now or datetime.now(UTC)
        if self.taken_at is None:
            return f"{self.path}: no copy time recorded"
        age = (now - self.taken_at).total_seconds()
        wm = self.watermark.isoformat() if self.watermark else "no events yet"
        state = "pipeline running" if self.pipeline_running else "pipeline stopped"
        return (
            f"analyst copy {self.path.name} taken {self.taken_at.isoformat(timespec='seconds')} "
            f"({age:,.0f} s ago; {state}); data up to {wm}"
        )


def pipeline_running(db: Path) -> bool:
    """True when another process holds the database for writing; ``NotADatabase`` when
    the file is no database at all (DuckDB refuses both with an IO error)."""
    try:
        con = duckdb.connect(str(db), read_only=True)
    except duckdb.Error as exc:
        err = dbfile.classify(db, exc)
        if isinstance(err, dbfile.DatabaseInUse):
            return True
        raise err from None
    try:
        dbfile.check_callpulse(con, db)
    finally:
        con.close()
    return False


def _copy_current(snap: Path, db: Path) -> bool:
    if not snap.exists():
        return False
    wal = db.with_name(db.name + ".wal")
    newest = max(db.stat().st_mtime, wal.stat().st_mtime if wal.exists() else 0.0)
    return snap.stat().st_mtime > newest  # equal: same clock tick, could be either order


def ensure_copy(config: Config) -> tuple[Path, bool]:
    """The analysts' copy to read, refreshed from the database when no pipeline holds it; (path, running)."""
    snap = copy_path(config)
    db = config.db
    not_a_directory(db, "the database (--db)")
    if not db.exists():
        if snap.exists():
            return snap, False
        raise AnalystError(f"{db}: no database yet (run `callpulse replay` or `callpulse demo` first)")
    if _copy_current(snap, db):
        return snap, pipeline_running(db)
    if pipeline_running(db):
        if not snap.exists():
            raise AnalystError(
                f"{snap}: the pipeline is running but has not written the analysts' copy yet; "
                f"try again within {config.analyst.freshness_s:g} s"
            )
        return snap, True
    try:
        backup.copy_file(db, snap, kind=COPY_KIND)
    except backup.CopyError as exc:
        if snap.exists():  # it started meanwhile: its copy is the one to read
            return snap, True
        raise AnalystError(str(exc)) from None
    _finish_listed(snap, config)
    return snap, False


def _finish_listed(snap: Path, config: Config) -> None:
    """A killed pipeline's database may list intervals (and callers' contacts) for a
    recompute: its copy gets them done, the database is left for the next pipeline to open.
    Skipped if another reader opened the fresh copy first (it then reads them as listed)."""
    try:
        con = duckdb.connect(str(snap))
    except duckdb.IOException:
        return
    try:
        if Store.finish_listed(con, config):
            sqlfiles.run(con, "ops/checkpoint")
    except duckdb.Error as exc:  # the copy is still readable as the pipeline left it
        log.warning("%s: the intervals a stopped pipeline left listed were not recomputed (%s)", snap, first_line(exc))
    finally:
        con.close()


def open_copy(config: Config) -> Opened:
    """A read-only connection to the analysts' copy, without file access (no writes anywhere)."""
    snap, running = ensure_copy(config)
    last_exc: Exception | None = None
    for _ in range(20):  # a rename between stat and open is harmless; a lock is brief
        try:
            con = duckdb.connect(str(snap), read_only=True)
            break
        except duckdb.IOException as exc:
            last_exc = exc
            time.sleep(0.05)
    else:
        raise AnalystError(f"{snap}: cannot open the analysts' copy read-only ({last_exc})")
    sqlfiles.run(con, "analyst/read_only_session", timezone=config.timezone)
    info = backup.read_info(con) or {}
    return Opened(con, snap, info.get("taken_at"), info.get("watermark"), running)  # type: ignore[arg-type]


def refused_write(exc: BaseException) -> bool:
    """True for DuckDB's refusal of a write on a read-only connection or of file access."""
    text = str(exc)
    return (
        "read-only mode" in text
        or "file system operations are disabled" in text
        or "lock_configuration" in text
        or "Cannot change" in text
        and "configuration" in text
    )


def request_backup_copy(config: Config, wait_s: float) -> tuple[Path, bool]:
    """Ask a running pipeline for a fresh copy; (copy path, True if served in time)."""
    req = request_path(config)
    snap = copy_path(config)
    asked = time.time()
    req.parent.mkdir(parents=True, exist_ok=True)
    req.write_text(f"{asked}\n")
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if not req.exists() and snap.exists() and snap.stat().st_mtime >= asked:
            return snap, True
        time.sleep(0.1)
    req.unlink(missing_ok=True)
    return snap, False
