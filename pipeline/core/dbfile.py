"""Opening a callpulse database file, with every failure said as what it is.

DuckDB lets one process hold a file for writing and refuses everyone else with a lock
error naming the holder; a file that is empty, truncated or not DuckDB at all fails
with other errors. The two must never be confused: "in use" tells the operator to stop
another process, "not a callpulse database" to restore from a backup.
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb

from pipeline.core import sqlfiles
from pipeline.core.errors import OperatorError, first_line, not_a_directory

_LOCK = "Could not set lock on file"
_PID = re.compile(r"\(PID (\d+)\)")
# The tables every callpulse database has had since its first version.
REQUIRED_TABLES = frozenset({"pipeline_state", "call_events"})


class DatabaseInUse(OperatorError):
    """Another process holds the file (DuckDB's lock); ``pid`` when DuckDB names it."""

    def __init__(self, path: Path, pid: int | None, hint: str) -> None:
        holder = f"another process (PID {pid})" if pid is not None else "another process"
        super().__init__(f"{path}: in use by {holder}; {hint}")
        self.path = path
        self.pid = pid


class NotADatabase(OperatorError):
    """The file is empty, corrupt, not DuckDB, or DuckDB without callpulse's tables."""

    def __init__(self, path: Path, reason: str, hint: str | None = None) -> None:
        hint = hint or f"restore from a backup (callpulse restore BACKUP {path} --force) or use another --db"
        super().__init__(f"{path}: not a callpulse database ({reason}); {hint}")
        self.path = path
        self.reason = reason


IN_USE_HINT = "only one process can write a database: stop it, or use another --db"


def classify(path: Path, exc: duckdb.Error, hint: str = IN_USE_HINT) -> OperatorError:
    """The operator's error for DuckDB's refusal to open ``path``."""
    text = first_line(exc)
    if _LOCK in text:
        pid = _PID.search(str(exc))
        return DatabaseInUse(path, int(pid.group(1)) if pid else None, hint)
    if "Permission denied" in text:
        return OperatorError(f"{path}: permission denied ({text})")
    if path.is_file() and path.stat().st_size == 0:
        return NotADatabase(path, "an empty file")
    if "not a valid DuckDB database file" in text:
        return NotADatabase(path, "not a DuckDB file")
    return NotADatabase(path, f"a damaged DuckDB file: {text.removeprefix('IO Error: ')}")


def connect(path: Path | str, read_only: bool = False, hint: str = IN_USE_HINT) -> duckdb.DuckDBPyConnection:
    """``duckdb.connect`` with its failures as ``DatabaseInUse`` / ``NotADatabase``."""
    path = Path(path)
    not_a_directory(path, "the database (--db)")
    try:
        return duckdb.connect(str(path), read_only=read_only)
    except duckdb.Error as exc:
        raise classify(path, exc, hint) from None


def current_database(con: duckdb.DuckDBPyConnection) -> str:
    """The name of the connection's current database."""
    row = sqlfiles.first(con, "ops/current_database")
    assert row is not None  # a connection always has a current database
    return str(row[0])


def tables(con: duckdb.DuckDBPyConnection, database: str | None = None) -> set[str]:
    """The base tables of ``database`` (default: the connection's own)."""
    db = current_database(con) if database is None else database
    return {r[0] for r in sqlfiles.rows(con, "ops/base_tables", db=db)}


def check_callpulse(
    con: duckdb.DuckDBPyConnection, path: Path, database: str | None = None, new_ok: bool = False
) -> None:
    """Raise ``NotADatabase`` unless the database holds callpulse's tables (``new_ok``: or none at all)."""
    try:
        found = tables(con, database)
    except duckdb.Error as exc:  # a file that opened but whose catalog can't be read
        raise NotADatabase(path, first_line(exc)) from None
    if new_ok and not found:
        return
    missing = REQUIRED_TABLES - found
    if missing:
        raise NotADatabase(path, f"a DuckDB file without the {', '.join(sorted(missing))} table")


def open_callpulse(path: Path | str, read_only: bool = False, new_ok: bool = False) -> duckdb.DuckDBPyConnection:
    """``connect`` and ``check_callpulse`` in one: the open connection, or closed again and
    the error raised (``new_ok``: an empty or new file is accepted too)."""
    con = connect(path, read_only=read_only)
    try:
        check_callpulse(con, Path(path), new_ok=new_ok)
    except BaseException:
        con.close()
        raise
    return con


def holder(path: Path, hint: str) -> None:
    """Raise ``DatabaseInUse`` if another process holds ``path`` (by trying to open it for
    writing, which is what DuckDB's lock is about); a file that is not a database is not
    "in use" and passes."""
    try:
        con = duckdb.connect(str(path))
    except duckdb.Error as exc:
        err = classify(path, exc, hint)
        if isinstance(err, DatabaseInUse):
            raise err from None
        return
    con.close()
