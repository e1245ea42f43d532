"""Consistent copies of a callpulse database: the analysts' copy, backups, restores.

One routine copies every table of a database into a fresh file made with the same
schema (sql/schema.sql) and views (sql/views.sql), then the file is renamed into
place, so a reader sees either the old file or the new one, never half of one.

- ``copy_live(con, dest)`` copies the database behind ``con``, the pipeline's own
  connection or another connection to the same open database: it ATTACHes the fresh file and copies inside one
  transaction. Every batch is one transaction, so the copy holds exactly the
  batches committed when it began: consistent while the pipeline runs.
- ``copy_file(src, dest)`` copies a database no process is writing (a stopped
  pipeline, the analysts' copy, a backup): the fresh file ATTACHes the source read-only.
- ``restore(src, dest, force)`` is ``copy_file`` that refuses to overwrite.

The analysts' copy or a backup carries one extra table, ``snapshot_info`` (kind, taken_at,
watermark, source_db, copy_ms); a restore leaves it out, giving a plain pipeline
database the pipeline can resume on.
"""

from __future__ import annotations

import os
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


def _fresh_target(dest: Path) -> Path:
    """An empty file beside ``dest`` with the callpulse schema and views; renamed into place later."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + f".tmp-{os.getpid()}")
    for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
        leftover.unlink(missing_ok=True)
    con = duckdb.connect(str(tmp))
    try:
        con.execute("SET TimeZone = 'UTC'")
        sqlfiles.run(con, "schema")
        sqlfiles.run(con, "views")
    finally:
        con.close()
    return tmp


def _copy_tables(con: duckdb.DuckDBPyConnection, src: str, dst: str) -> int:
    """Copy every base table of database ``src`` into database ``dst`` (one transaction)."""
    tables = [r[0] for r in con.execute(sqlfiles.load("analyst_tables"), {"db": src}).fetchall()]
    existing = {r[0] for r in con.execute(sqlfiles.load("analyst_tables"), {"db": dst}).fetchall()}
    q_src, q_dst = sqlfiles.quote_identifier(src), sqlfiles.quote_identifier(dst)
    with sqlfiles.transaction(con):
        for table in tables:
            t = sqlfiles.quote_identifier(table)
            if table in existing:
                con.execute(f"DELETE FROM {q_dst}.main.{t}")
                con.execute(f"INSERT INTO {q_dst}.main.{t} BY NAME SELECT * FROM {q_src}.main.{t}")
            else:  # a table this version's schema.sql doesn't know: copy it as it is
                con.execute(f"CREATE TABLE {q_dst}.main.{t} AS SELECT * FROM {q_src}.main.{t}")
    return len(tables)


def _finish(
    tmp: Path,
    dest: Path,
    kind: str | None,
    source: Path | str,
    copy_ms: float,
    taken_at: datetime,
    tables: int,
) -> CopyInfo:
    con = duckdb.connect(str(tmp))
    try:
        if kind is not None:
            sqlfiles.run(
                con,
                "analyst_snapshot_info",
                {"kind": kind, "taken_at": taken_at, "source_db": str(source), "copy_ms": copy_ms},
            )
        watermark = con.execute(sqlfiles.load("pipeline_state")).fetchall()
        con.execute("CHECKPOINT")
    finally:
        con.close()
    os.replace(tmp, dest)
    wm = watermark[0][0] if watermark else None
    return CopyInfo(dest, kind or "restore", taken_at, wm, copy_ms, tables)


def copy_live(con: duckdb.DuckDBPyConnection, dest: Path, kind: str = "copy", source: Path | str = "") -> CopyInfo:
    """Copy the database behind ``con`` (the writer connection, or another connection to the
    same open database) into ``dest``."""
    dest = Path(dest)
    tmp = _fresh_target(dest)
    try:
        taken_at = datetime.now(UTC)
        started = time.perf_counter()
        src = con.execute("SELECT current_database()").fetchall()[0][0]
        alias = f"{COPY_DB}_{uuid.uuid4().hex[:8]}"  # ATTACH names are shared by all connections
        con.execute(f"ATTACH $path AS {sqlfiles.quote_identifier(alias)}", {"path": str(tmp)})
        try:
            tables = _copy_tables(con, src, alias)
        finally:
            con.execute(f"DETACH {sqlfiles.quote_identifier(alias)}")
        copy_ms = (time.perf_counter() - started) * 1000
        return _finish(tmp, dest, kind, source, copy_ms, taken_at, tables)
    except BaseException:
        tmp.unlink(missing_ok=True)
        tmp.with_name(tmp.name + ".wal").unlink(missing_ok=True)
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
                con.execute(
                    f"ATTACH $path AS {sqlfiles.quote_identifier(SOURCE_DB)} (READ_ONLY)",
                    {"path": str(src)},
                )
                dbfile.check_callpulse(con, src, SOURCE_DB)
            except duckdb.Error as exc:
                raise _copy_error(
                    dbfile.classify(src, exc, "a running pipeline's file is copied by `callpulse backup`"), kind
                ) from None
            except dbfile.NotADatabase as exc:
                raise _copy_error(exc, kind) from None
            tables = _copy_tables(con, SOURCE_DB, con.execute("SELECT current_database()").fetchall()[0][0])
            copy_ms = (time.perf_counter() - started) * 1000
            con.execute(f"DETACH {sqlfiles.quote_identifier(SOURCE_DB)}")
        finally:
            con.close()
        return _finish(tmp, dest, kind, src, copy_ms, taken_at, tables)
    except BaseException:
        tmp.unlink(missing_ok=True)
        tmp.with_name(tmp.name + ".wal").unlink(missing_ok=True)
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
        cur = con.execute(sqlfiles.load("analyst_freshness"))
    except duckdb.CatalogException:
        return None
    names = [d[0] for d in cur.description or []]
    rows = cur.fetchall()
    return dict(zip(names, rows[0], strict=True)) if rows else None


def _copy_error(exc: Exception, kind: str | None = "backup") -> CopyError:
    """A ``CopyError`` with the message of the operator's error ``exc``; the source of a
    restore (``kind`` None) is a backup, so restoring from one is no advice for it."""
    if kind is None and isinstance(exc, dbfile.NotADatabase):
        exc = dbfile.NotADatabase(exc.path, exc.reason, "give a backup made by `callpulse backup`")
    return CopyError(str(exc), in_use=isinstance(exc, dbfile.DatabaseInUse))
