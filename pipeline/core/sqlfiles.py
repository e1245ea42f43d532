"""Every query lives in ``sql/<stage>/<name>.sql``; this is the one place that finds and runs them.

A query is named by its path under ``sql/`` without the suffix, e.g. ``"kpi/queue_window"``.
The first line of each file is a comment saying what the query returns. Values are
bound as parameters (``$name``), never formatted into the text; callers pass them as
keyword arguments and each statement receives only the ones it uses.

One helper per result shape, used by every module that runs a query: ``run`` (every
statement of a file, no result), ``rows`` (tuples), ``first`` (the first row or None),
``dicts`` (one dict per row) and ``frame`` (a polars frame).

The only text ever built is an identifier DuckDB cannot take as a parameter (the
table and database names a backup copies between, ``ops/*.sql``): such a file writes
``{key}`` and the caller runs it with ``run_with_identifiers``; each is escaped by
``quote_identifier``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

_HERE = Path(__file__).resolve().parent
# In a source checkout the queries sit at the top level (analysts read them there);
# an installed wheel carries them inside the package.
_CANDIDATES = (_HERE.parents[1] / "sql", _HERE.parent / "_sql")
SQL_DIR = next((p for p in _CANDIDATES if p.is_dir()), _CANDIDATES[0])


@cache
def names() -> tuple[str, ...]:
    """Every query name, e.g. ``"kpi/queue_window"``, sorted."""
    return tuple(sorted(p.relative_to(SQL_DIR).with_suffix("").as_posix() for p in SQL_DIR.rglob("*.sql")))


@cache
def load(name: str) -> str:
    """The text of ``sql/<name>.sql``; an unknown name raises ``KeyError`` naming the close ones."""
    if name not in names():
        close = difflib.get_close_matches(name, names(), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise KeyError(f"no query named {name!r} in {SQL_DIR}{hint}")
    return (SQL_DIR / f"{name}.sql").read_text(encoding="utf-8")


def quote_identifier(name: str) -> str:
    """The one escape for the few identifiers we must build (table names in backups)."""
    return '"' + name.replace('"', '""') + '"'


_PARAM = re.compile(r"\$([A-Za-z_]\w*)")


@cache
def statements(name: str) -> tuple[str, ...]:
    """The statements of a multi-statement file, in order."""
    parts = re.split(r";\s*(?:\n|$)", load(name))
    return tuple(p.strip() for p in parts if _has_code(p))


def _has_code(text: str) -> bool:
    return any(line.strip() and not line.strip().startswith("--") for line in text.splitlines())


def params_for(statement: str, params: Mapping[str, object]) -> dict[str, object]:
    """Only the named parameters a statement uses (DuckDB refuses unused ones)."""
    used = set(_PARAM.findall(statement))
    return {k: v for k, v in params.items() if k in used}


def _with_identifiers(statement: str, identifiers: Mapping[str, str]) -> str:
    for key, value in identifiers.items():
        statement = statement.replace("{" + key + "}", quote_identifier(value))
    return statement


def _single(name: str) -> str:
    found = statements(name)
    if len(found) != 1:
        raise ValueError(f"sql/{name}.sql holds {len(found)} statements; a query that returns rows holds one")
    return found[0]


def run(con: duckdb.DuckDBPyConnection, name: str, /, **params: Any) -> None:
    """Execute every statement of ``sql/<name>.sql``, each with the parameters it uses."""
    _execute_all(con, name, {}, params)


def run_with_identifiers(
    con: duckdb.DuckDBPyConnection, name: str, identifiers: Mapping[str, str], /, **params: Any
) -> None:
    """``run`` for a file that names a table or database DuckDB can't take as a parameter:
    each ``{key}`` in the file becomes ``quote_identifier(identifiers[key])``."""
    missing = [k for k in identifiers if "{" + k + "}" not in load(name)]
    if missing:
        raise KeyError(f"sql/{name}.sql has no placeholder for identifier(s) {missing}")
    _execute_all(con, name, identifiers, params)


def _execute_all(
    con: duckdb.DuckDBPyConnection, name: str, identifiers: Mapping[str, str], params: Mapping[str, Any]
) -> None:
    for stmt in statements(name):
        con.execute(_with_identifiers(stmt, identifiers), params_for(stmt, params))


def rows(con: duckdb.DuckDBPyConnection, name: str, /, **params: Any) -> list[tuple[Any, ...]]:
    """The rows of the one query in ``sql/<name>.sql``, as tuples (read whole: DuckDB 2 requires it)."""
    stmt = _single(name)
    return con.execute(stmt, params_for(stmt, params)).fetchall()


def first(con: duckdb.DuckDBPyConnection, name: str, /, **params: Any) -> tuple[Any, ...] | None:
    """The first row of ``sql/<name>.sql``, or None when it returns none."""
    found = rows(con, name, **params)
    return found[0] if found else None


def dicts(con: duckdb.DuckDBPyConnection, name: str, /, **params: Any) -> list[dict[str, Any]]:
    """The rows of ``sql/<name>.sql`` as dicts keyed by column name."""
    stmt = _single(name)
    cur = con.execute(stmt, params_for(stmt, params))
    cols = [d[0] for d in cur.description or []]
    return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]


def frame(con: duckdb.DuckDBPyConnection, name: str, /, **params: Any) -> pl.DataFrame:
    """The rows of ``sql/<name>.sql`` as a polars frame (through Arrow: types and time zones kept)."""
    stmt = _single(name)
    out = pl.from_arrow(con.sql(stmt, params=params_for(stmt, params) or None).to_arrow_table())
    assert isinstance(out, pl.DataFrame)
    return out


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Begin ... commit, or roll back on any exception (which is re-raised)."""
    con.begin()
    try:
        yield
    except BaseException:
        con.rollback()
        raise
    con.commit()
