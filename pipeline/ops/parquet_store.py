"""The shared analytical store: each worker appends its finished rows as hive-partitioned
Parquet, and analysts read every worker's files as one centre.

Layout under the store's root (one folder per table, so each has one schema)::

    <root>/<table>/day=YYYY-MM-DD/worker=<id>/<seq>.parquet

``table`` is ``calls``, ``kpi_queue_interval``, ``kpi_agent_interval``, ``breaches`` or
the additive ``queue_interval`` / ``agent_interval`` sums (the names analysts know),
``day`` the site-local day of the row (offer, interval start, breach opening), ``seq``
the worker's export number.

Finished, as of a frontier (the worker's watermark minus ``settle``): a call that is over
(answered and ended, abandoned, exited or orphaned by then), a queue or agent interval that
has ended, a breach that has closed. A finished row can still change (a late event, a
caller's next contact within the repeat window): each export looks back over the span in
which the store itself still changes rows (the longest repeat window plus orphan span,
plus an interval) and writes the rows that are new or whose content hash differs from the
one recorded in ``parquet_marks``; older rows are not looked at again. Only a breach can
vanish (breach evaluation re-decides minutes after a late event): an exported breach that
is no longer there is written again as a deletion row (``_deleted``), which the view drops.

Lifecycle of one export (``ParquetExporter.export``, on the engine's thread, between
batches): in one DuckDB transaction, select each table's candidates, drop the unchanged,
``COPY`` each day's rows to a hidden temporary file and rename it into place, then record
the marks and the export row, and commit. A crash before the commit leaves either a
temporary file (never read; removed at the next start) or renamed files with rows that are
not marked: the next export writes the same rows again under the same ``seq`` (the number
comes from the rolled-back table), so the file is replaced, not duplicated. Whatever else
could repeat a row (a compaction racing an export, a queue moving between workers) is
resolved by the views: one row per table key, the newest by (the exporting worker's
watermark, seq, worker id).

Paths are built here from validated parts (the worker id, fixed table names, days from
SQL) and handed to DuckDB as parameters, never spliced into SQL text: DuckDB 2.0's
``COPY ... TO $path`` takes one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

from pipeline.core import config as config_module
from pipeline.core import sqlfiles
from pipeline.core.config import Config
from pipeline.core.engine import BatchResult, Engine
from pipeline.core.ownership import EVERYTHING, Ownership

log = logging.getLogger("callpulse.parquet")

WORKER_ID = config_module.WORKER_ID
DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True, slots=True)
class ParquetTable:
    """One exported table: the analysts' view name and the query selecting its candidates."""

    name: str
    rows_query: str
    view_query: str
    deletions_query: str | None = None
    """Adds deletion rows for exported rows that vanished (only breaches can: re-decided)."""
    owner: str = "queue"
    """Whose rows they are (``queue`` or ``agent``): with several workers, each exports only
    the rows of the queues or agents it owns now (pipeline.core.ownership)."""


TABLES: tuple[ParquetTable, ...] = (
    ParquetTable("calls", "ops/parquet_rows_calls", "analyst/parquet_view_calls"),
    ParquetTable("kpi_queue_interval", "ops/parquet_rows_queue_intervals", "analyst/parquet_view_kpi_queue_interval"),
    ParquetTable(
        "kpi_agent_interval",
        "ops/parquet_rows_agent_intervals",
        "analyst/parquet_view_kpi_agent_interval",
        owner="agent",
    ),
    ParquetTable(
        "breaches", "ops/parquet_rows_breaches", "analyst/parquet_view_breaches", "ops/parquet_tombstones_breaches"
    ),
    # The additive sums behind the KPI views: what `callpulse report` adds up per day or queue.
    ParquetTable("queue_interval", "ops/parquet_rows_queue_sums", "analyst/parquet_view_queue_interval"),
    ParquetTable("agent_interval", "ops/parquet_rows_agent_sums", "analyst/parquet_view_agent_interval", owner="agent"),
)
# owner → (the owners parquet_rows holds rows of, delete the rows of these owners)
OWNER_QUERIES = {
    "queue": ("ops/parquet_queues_in_rows", "ops/parquet_drop_queues"),
    "agent": ("ops/parquet_agents_in_rows", "ops/parquet_drop_agents"),
}
TEMP_SUFFIX = ".tmp"


class ParquetStoreError(Exception):
    """A user mistake about the Parquet store (a bad directory or worker id)."""


def check_worker_id(worker: str) -> str:
    """``worker`` if it can name a partition folder (letters, digits, ``_ . -``), else an error."""
    if not WORKER_ID.fullmatch(worker):
        raise ParquetStoreError(
            f"worker id {worker!r} cannot name a Parquet partition: use 1-64 letters, digits, '_', '.', '-'"
        )
    return worker


def partition_dir(root: Path, table: str, day: str, worker: str) -> Path:
    """``<root>/<table>/day=<day>/worker=<worker>``, after checking each part."""
    if table not in {t.name for t in TABLES} or not DAY.fullmatch(day):
        raise ValueError(f"not a table and day of the Parquet store: {table!r}, {day!r}")
    return root / table / f"day={day}" / f"worker={check_worker_id(worker)}"


def lookback_s(config: Config) -> float:
    """How far back a finished row can still change in the store: the longest repeat window
    plus orphan span of any queue, plus one interval."""
    settings = [config.defaults, *config.queues.values()]
    return max(s.repeat_window_s + s.orphan_after_s for s in settings) + config.interval_s


@dataclass(frozen=True, slots=True)
class ExportResult:
    """What one export wrote: its number, frontier and files (none: nothing new)."""

    seq: int
    frontier: datetime
    rows: int
    files: tuple[Path, ...]


class ParquetExporter:
    """Appends a worker's finished rows to the store under ``root`` (the writer's connection).

    ``export()`` runs on the thread that owns ``con`` (the engine's), between batches.
    ``before_publish`` (tests) is called with each temporary file before it is renamed.
    """

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        root: Path,
        worker: str | None,
        lookback_s: float,
        settle_s: float = 0.0,
        before_publish: Callable[[Path], None] | None = None,
        ownership: Callable[[], Ownership] = lambda: EVERYTHING,
    ) -> None:
        self.con = con
        self.ownership = ownership
        self.root = Path(root)
        self.lookback = timedelta(seconds=lookback_s)
        self.settle = timedelta(seconds=settle_s)
        self.before_publish = before_publish
        sqlfiles.run(con, "ops/parquet_tables")
        self.worker = self._identity(worker)
        self._remove_temporaries()

    def _identity(self, configured: str | None) -> str:
        """``configured``, else the id this database had, else a new one: the host name and
        a random suffix (a container's host name alone may be another's after a restart,
        and two writers in one folder would replace each other's files)."""
        stored = sqlfiles.first(self.con, "ops/parquet_worker_id")
        worker = configured or (
            stored[0] if stored else f"{config_module.host_worker_id()[:55]}-{uuid.uuid4().hex[:8]}"
        )
        check_worker_id(worker)
        if stored is None or stored[0] != worker:
            sqlfiles.run(self.con, "ops/parquet_set_worker_id", worker=worker)
        return worker

    def _remove_temporaries(self) -> None:
        """Temporary files of an export that did not finish: never read, never to be renamed."""
        for table in TABLES:
            for tmp in (self.root / table.name).glob(f"day=*/worker={self.worker}/.*{TEMP_SUFFIX}"):
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()

    def export(self, now: datetime | None = None) -> ExportResult | None:
        """Write the rows finished by the frontier that are new or changed; None before any
        event or when nothing is new."""
        state = sqlfiles.first(self.con, "schema/pipeline_state")
        watermark = state[0] if state else None
        if watermark is None:
            return None
        frontier = watermark - self.settle
        files: list[Path] = []
        rows = 0
        with sqlfiles.transaction(self.con):
            seq, previous = sqlfiles.rows(self.con, "ops/parquet_next_seq")[0]
            # The first export writes the whole history; later ones look back as far as
            # rows can still change.
            lo = None if previous is None else frontier - self.lookback
            for table in TABLES:
                rows_query, deletions = table.rows_query, table.deletions_query
                sqlfiles.run(self.con, rows_query, frontier=frontier, lo=lo)
                if deletions is not None:
                    sqlfiles.run(self.con, deletions, lo=lo)
                self._drop_not_owned(table.owner)
                sqlfiles.run(self.con, "ops/parquet_drop_unchanged", tbl=table.name)
                for day, count in sqlfiles.rows(self.con, "ops/parquet_days"):
                    files.append(self._write(table.name, day, seq, watermark))
                    rows += count
                sqlfiles.run(self.con, "ops/parquet_mark", tbl=table.name, lo=lo)
            if rows == 0 and previous is not None:
                return None  # nothing new: no export row, so the table grows with exports only
            sqlfiles.run(
                self.con,
                "ops/parquet_record_export",
                seq=seq,
                exported_at=now or datetime.now(UTC),
                watermark=watermark,
                frontier=frontier,
                rows=rows,
            )
        return ExportResult(seq, frontier, rows, tuple(files))

    def _drop_not_owned(self, owner: str) -> None:
        """Leave out the rows of queues (agents) another worker owns now: a worker keeps what
        it stored of a queue it lost, and must not export it again over the new owner's."""
        owns = self.ownership()
        if owns.assigned is None:
            return
        mine = owns.owns_queue if owner == "queue" else owns.owns_agent
        in_rows, drop = OWNER_QUERIES[owner]
        gone = [k for (k,) in sqlfiles.rows(self.con, in_rows) if not mine(k)]
        if gone:
            sqlfiles.run(self.con, drop, keys=gone)

    def _write(self, table: str, day: str, seq: int, watermark: datetime) -> Path:
        folder = partition_dir(self.root, table, day, self.worker)
        folder.mkdir(parents=True, exist_ok=True)
        final = folder / f"{seq:012d}.parquet"
        tmp = folder / f".{seq:012d}.{uuid.uuid4().hex}{TEMP_SUFFIX}"
        sqlfiles.run(self.con, "ops/parquet_copy_day", path=str(tmp), seq=seq, watermark=watermark, day=day)
        _fsync(tmp)  # on disk before it has a name readers use, and before the commit marks it
        if self.before_publish is not None:
            self.before_publish(tmp)
        os.replace(tmp, final)  # atomic: readers see the old file or the new one, never a part
        _fsync(folder)  # the rename itself survives a power cut
        return final


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def attach_configured(engine: Engine) -> ParquetExporter | None:
    """``attach`` with ``[analyst] parquet``, ``parquet_worker`` and ``parquet_every`` (none: no export)."""
    a = engine.config.analyst
    if a.parquet is None:
        return None
    # one name per worker: the routed worker's id unless the store is given its own
    return attach(engine, a.parquet, a.parquet_worker or engine.config.kafka.worker_id or None, a.parquet_every_s)


def attach(engine: Engine, root: Path, worker: str | None, every_s: float, settle_s: float = 0.0) -> ParquetExporter:
    """Export after a batch at most every ``every_s`` seconds, and when the engine drains
    (a bounded run's end); on the engine's thread, so the writer connection is never shared."""
    exporter = ParquetExporter(
        engine.store.con, root, worker, lookback_s(engine.config), settle_s, ownership=lambda: engine.ownership
    )
    last = [float("-inf")]

    def run() -> None:
        try:
            engine.store.recompute_intervals()  # the interval rows it exports, up to date
            exporter.export()
        except (duckdb.Error, OSError) as exc:  # the next export writes the same rows again
            log.error("parquet export to %s failed (retried at the next one): %s", root, exc)
        last[0] = time.monotonic()

    def after_batch(_: BatchResult) -> None:
        if time.monotonic() - last[0] >= every_s:
            run()

    engine.subscribe(after_batch, on_drain=run)
    return exporter


# -- reading: the analysts' views over every worker ----------------------------------------


def tables_present(root: Path) -> list[ParquetTable]:
    """The tables with at least one published file under ``root``."""
    return [t for t in TABLES if next((root / t.name).glob("day=*/worker=*/*.parquet"), None) is not None]


def open_views(root: Path, timezone: str = "UTC") -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the analysts' views (``calls``, ``kpi_queue_interval``, ...)
    over every worker's files under ``root``: the newest version of each row; with the
    queue sums, also the ``queue_settings`` and ``pipeline_state`` the reports read."""
    root = Path(root)
    if not root.is_dir():
        raise ParquetStoreError(f"Parquet store {root} is not a directory: set [analyst] parquet or --parquet DIR")
    present = tables_present(root)
    if not present:
        raise ParquetStoreError(f"Parquet store {root} holds no exported rows yet (no day=*/worker=*/*.parquet)")
    con = duckdb.connect(":memory:")
    sqlfiles.run(con, "analyst/parquet_root", root=str(root.resolve()))
    for table in present:
        view = table.view_query
        sqlfiles.run(con, view)
    names = {t.name for t in present}
    if "queue_interval" in names:
        sqlfiles.run(con, "analyst/parquet_report_views", timezone=timezone)
    if "calls" in names:
        sqlfiles.run(con, "analyst/parquet_call_state_view")
    return con


def newest_version(con: duckdb.DuckDBPyConnection, root: Path) -> datetime | None:
    """The newest exporting watermark of any call under ``root`` (None: no call exported)."""
    if "calls" not in {t.name for t in tables_present(root)}:
        return None
    found = sqlfiles.first(con, "analyst/parquet_newest")
    return found[0] if found else None


# -- compaction ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Compacted:
    """One worker's day of one table merged: the file written and how many it replaced."""

    path: Path
    replaced: int


def compact_day(root: Path, day: str) -> list[Compacted]:
    """Merge each worker's files of ``day`` into one file per table and worker.

    The merged file (named after the highest ``seq`` it holds, so it sorts last) is written
    to a temporary name and renamed into place before the files it replaces are removed:
    a reader sees the old files, or the old and the merged ones (the views keep one row
    per key, the same row either way), or the merged one. Every version is kept; a file an
    export publishes meanwhile is left for the next compaction.
    """
    root = Path(root)
    if not DAY.fullmatch(day):
        raise ParquetStoreError(f"day must be YYYY-MM-DD, got {day!r}")
    out: list[Compacted] = []
    con = duckdb.connect(":memory:")
    try:
        for table in TABLES:
            for folder in sorted((root / table.name / f"day={day}").glob("worker=*")):
                files = sorted(p for p in folder.glob("*.parquet"))
                if len(files) < 2:
                    continue
                top = max(int(p.stem.split("-")[0]) for p in files)
                merged = folder / f"{top:012d}-c{uuid.uuid4().hex[:8]}.parquet"
                tmp = folder / f".{merged.stem}{TEMP_SUFFIX}"
                sqlfiles.run(con, "ops/parquet_compact_copy", files=[str(p) for p in files], path=str(tmp))
                _fsync(tmp)
                os.replace(tmp, merged)
                _fsync(folder)
                for p in files:
                    p.unlink()
                out.append(Compacted(merged, len(files)))
    finally:
        con.close()
    return out
