"""Consistent copies of a callpulse database: the analysts' copy, backups, restores.

One routine copies every table of a database into a fresh file made with the same
schema (sql/schema/tables.sql) and views (sql/schema/views.sql), then the file is renamed into
place, so a reader sees either the old file or the new one, never half of one.

- ``hold_checkpoints(con)`` then ``copy_checkpointed(src, dest)`` copy a running pipeline's
  file byte for byte (the analysts' copy). DuckDB writes the database file only when it
  checkpoints: a commit goes to the WAL, and the blocks the last checkpoint uses are not
  reused before the next one. So right after a checkpoint, with automatic checkpoints held
  off, the file is a consistent database of the batches committed until then, while the
  engine goes on committing to the WAL. The byte copy is the kernel's work; copying table
  by table makes DuckDB decode and re-encode every row, seconds of a core on a month of
  history while the engine's batches wait for it.
- ``copy_live(con, dest)`` copies the database behind ``con``, the pipeline's own
  connection or another connection to the same open database: it ATTACHes the fresh file and copies inside one
  transaction. Every batch is one transaction, so the copy holds exactly the
  batches committed when it began: consistent while the pipeline runs, but for the
  interval aggregates of the batches committed between the pipeline's recompute right
  before the copy (``Store.defer_intervals``) and the copy's start, which it lists in ``touched_q`` /
  ``touched_a`` for a pipeline that opens it (a restore) to finish.
- ``copy_file(src, dest)`` copies a database no process is writing (a stopped
  pipeline, the analysts' copy, a backup): the fresh file ATTACHes the source read-only.
- ``restore(src, dest, force)`` is ``copy_file`` that refuses to overwrite.

The analysts' copy or a backup carries one extra table, ``snapshot_info`` (kind, taken_at,
watermark, source_db, copy_ms); a restore leaves it out, giving a plain pipeline
database the pipeline can resume on.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from pipeline.core import dbfile, sqlfiles
from pipeline.core.errors import OperatorError, not_a_directory

COPY_DB = "cp_copy"
SOURCE_DB = "cp_source"


class CopyError(OperatorError):
    """A copy that cannot be made (missing source, existing target, not a callpulse database,
    a file in use: ``in_use``)."""

    def __init__(self, message: str, in_use: bool = False) -> None:
        super().__init__(message)
        self.in_use = in_use


@dataclass(frozen=True, slots=True)
class CopyInfo:
    """What a copy was: ``kind`` copy (the analysts') / backup / restore, when, how long it held the source."""

    path: Path
    kind: str
    taken_at: datetime
    watermark: datetime | None
    copy_ms: float
    tables: int


def _target_path(dest: Path) -> Path:
    """The file beside ``dest`` a copy is made in (renamed into place later), with no
    leftover of an earlier attempt: a leftover WAL would be replayed into the copy."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + f".tmp-{os.getpid()}")
    _discard(tmp)
    return tmp


def _discard(tmp: Path) -> None:
    """Remove an unfinished copy and its WAL."""
    tmp.unlink(missing_ok=True)
    tmp.with_name(tmp.name + ".wal").unlink(missing_ok=True)


def _fresh_target(dest: Path) -> Path:
    """An empty file beside ``dest`` with the callpulse schema and views; renamed into place later."""
    tmp = _target_path(dest)
    con = duckdb.connect(str(tmp))
    try:
        sqlfiles.run(con, "schema/writer_session")
        sqlfiles.run(con, "schema/tables")
        sqlfiles.run(con, "schema/views")
    finally:
        con.close()
    return tmp


def _copy_tables(con: duckdb.DuckDBPyConnection, src: str, dst: str) -> int:
    """Copy every base table of database ``src`` into database ``dst`` (one transaction)."""
    tables = [r[0] for r in sqlfiles.rows(con, "ops/base_tables", db=src)]
    existing = {r[0] for r in sqlfiles.rows(con, "ops/base_tables", db=dst)}
    with sqlfiles.transaction(con):
        for table in tables:
            # A table this version's schema doesn't know is copied as it is.
            query = "ops/replace_table" if table in existing else "ops/copy_new_table"
            sqlfiles.run_with_identifiers(con, query, {"src": src, "dst": dst, "table": table})
    return len(tables)


def _finish(
    tmp: Path,
    dest: Path,
    kind: str | None,
    source: Path | str,
    copy_ms: float,
    taken_at: datetime,
    tables: int | None = None,
) -> CopyInfo:
    con = duckdb.connect(str(tmp))
    try:
        if tables is None:
            tables = len(dbfile.tables(con))
        if kind is not None:
            sqlfiles.run(
                con,
                "analyst/record_snapshot_info",
                kind=kind,
                taken_at=taken_at,
                source_db=str(source),
                copy_ms=copy_ms,
            )
        state = sqlfiles.first(con, "schema/pipeline_state")
        sqlfiles.run(con, "ops/checkpoint")
    finally:
        con.close()
    os.replace(tmp, dest)
    wm = state[0] if state else None
    return CopyInfo(dest, kind or "restore", taken_at, wm, copy_ms, tables)


def hold_checkpoints(con: duckdb.DuckDBPyConnection) -> None:
    """Checkpoint the database behind ``con`` now and hold off automatic checkpoints until
    ``release_checkpoints``. Meanwhile commits only grow the WAL, and the database file
    stays what this checkpoint wrote. Raises DuckDB's error if it cannot checkpoint now
    (another connection's transaction wrote, if only to a temp table), holding nothing."""
    sqlfiles.run(con, "ops/hold_checkpoints")
    try:
        sqlfiles.run(con, "ops/checkpoint")
    except duckdb.Error:
        release_checkpoints(con)
        raise


def release_checkpoints(con: duckdb.DuckDBPyConnection) -> None:
    """Give automatic checkpoints back the pipeline's WAL threshold (the writer's session
    settings set it; read back, DuckDB rounds it, so it is set anew, not restored)."""
    sqlfiles.run(con, "schema/writer_session")


def copy_checkpointed(src: Path, dest: Path, kind: str, taken_at: datetime, held_ms: float = 0.0) -> CopyInfo:
    """Copy the file ``src`` of an open database whose checkpoints are held (``hold_checkpoints``,
    taken at ``taken_at`` in ``held_ms``) into ``dest``. Only the file: the WAL holds the batches
    committed since the checkpoint, which the copy leaves to the next one."""
    src, dest = Path(src), Path(dest)
    tmp = _target_path(dest)
    try:
        started = time.perf_counter()
        _copy_bytes(src, tmp)
        copy_ms = held_ms + (time.perf_counter() - started) * 1000
        return _finish(tmp, dest, kind, src, copy_ms, taken_at)
    except BaseException:
        _discard(tmp)
        raise


def _copy_bytes(src: Path, dest: Path) -> None:
    """Copy a file in a child process: the database's lock is a POSIX record lock, which
    closing any descriptor of that file in this process would release (other processes
    could then open the database while the pipeline writes it)."""
    done = subprocess.run(["cp", "--", str(src), str(dest)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise CopyError(f"{src}: cannot copy to {dest}: {done.stderr.strip() or f'cp exited {done.returncode}'}")


def copy_live(con: duckdb.DuckDBPyConnection, dest: Path, kind: str = "copy", source: Path | str = "") -> CopyInfo:
    """Copy the database behind ``con`` (the writer connection, or another connection to the
    same open database) into ``dest``."""
    dest = Path(dest)
    tmp = _fresh_target(dest)
    try:
        taken_at = datetime.now(UTC)
        started = time.perf_counter()
        src = dbfile.current_database(con)
        alias = f"{COPY_DB}_{uuid.uuid4().hex[:8]}"  # ATTACH names are shared by all connections
        sqlfiles.run_with_identifiers(con, "ops/attach_copy_target", {"target": alias}, path=str(tmp))
        try:
            tables = _copy_tables(con, src, alias)
        finally:
            sqlfiles.run_with_identifiers(con, "ops/detach", {"db": alias})
        copy_ms = (time.perf_counter() - started) * 1000
        return _finish(tmp, dest, kind, source, copy_ms, taken_at, tables)
    except BaseException:
        _discard(tmp)
        raise


def copy_file(src: Path, dest: Path, kind: str | None = "backup") -> CopyInfo:
    """Copy a database file no process is writing into ``dest`` (``kind`` None: a restore)."""
    src, dest = Path(src), Path(dest)
    if not src.is_file():
        raise CopyError(f"{src}: no such database file")
    tmp = _fresh_target(dest)
    taken_at = datetime.now(UTC)
    try:
        con = duckdb.connect(str(tmp))
        try:
            started = time.perf_counter()
            try:
                sqlfiles.run_with_identifiers(con, "ops/attach_copy_source", {"source": SOURCE_DB}, path=str(src))
                dbfile.check_callpulse(con, src, SOURCE_DB)
            except duckdb.Error as exc:
                raise _copy_error(
                    dbfile.classify(src, exc, "a running pipeline's file is copied by `callpulse backup`"), kind
                ) from None
            except dbfile.NotADatabase as exc:
                raise _copy_error(exc, kind) from None
            tables = _copy_tables(con, SOURCE_DB, dbfile.current_database(con))
            copy_ms = (time.perf_counter() - started) * 1000
            sqlfiles.run_with_identifiers(con, "ops/detach", {"db": SOURCE_DB})
        finally:
            con.close()
        return _finish(tmp, dest, kind, src, copy_ms, taken_at, tables)
    except BaseException:
        _discard(tmp)
        raise


def restore(src: Path, dest: Path, force: bool = False) -> CopyInfo:
    """Make ``dest`` a pipeline database equal to the backup ``src``; refuses to overwrite unless ``force``."""
    src, dest = Path(src), Path(dest)
    not_a_directory(src, "the backup to restore")
    not_a_directory(dest, "the database to restore into")
    if dest.exists() and not force:
        raise CopyError(f"{dest}: a database already exists there; use --force to overwrite it")
    if dest.resolve() == src.resolve():
        raise CopyError(f"{dest}: source and target are the same file")
    if dest.exists():
        # Replacing a file a pipeline holds would not stop it: it would go on writing the
        # old file, now nameless, and every record it stored from then on would be lost.
        try:
            dbfile.holder(dest, "stop the pipeline using it, then restore")
        except dbfile.DatabaseInUse as exc:
            raise _copy_error(exc) from None
    info = copy_file(src, dest, kind=None)
    dest.with_name(dest.name + ".wal").unlink(missing_ok=True)  # a stale WAL of the overwritten file
    return info


def read_info(con: duckdb.DuckDBPyConnection) -> dict[str, object] | None:
    """The snapshot_info row of an open analysts' copy or backup, or None (a plain database)."""
    try:
        rows = sqlfiles.dicts(con, "analyst/snapshot_info")
    except duckdb.CatalogException:
        return None
    return rows[0] if rows else None


def _copy_error(exc: Exception, kind: str | None = "backup") -> CopyError:
    """A ``CopyError`` with the message of the operator's error ``exc``; the source of a
    restore (``kind`` None) is a backup, so restoring from one is no advice for it."""
    if kind is None and isinstance(exc, dbfile.NotADatabase):
        exc = dbfile.NotADatabase(exc.path, exc.reason, "give a backup made by `callpulse backup`")
    return CopyError(str(exc), in_use=isinstance(exc, dbfile.DatabaseInUse))
