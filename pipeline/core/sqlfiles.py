"""Every query lives in ``sql/<name>.sql``; this is the one place that finds them.

The first line of each file is a comment saying what the query returns. Values
are bound as parameters (``$name``), never formatted into the text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import duckdb

_HERE = Path(__file__).resolve().parent
# In a source checkout the queries sit at the top level (analysts read them there);
# an installed wheel carries them inside the package.
_CANDIDATES = (_HERE.parents[1] / "sql", _HERE.parent / "_sql")
SQL_DIR = next((p for p in _CANDIDATES if p.is_dir()), _CANDIDATES[0])


@cache
def load(name: str) -> str:
    """The text of ``sql/<name>.sql``."""
    path = SQL_DIR / f"{name}.sql"
    if not path.is_file():
        raise FileNotFoundError(f"no query named {name!r} in {SQL_DIR}")
    return path.read_text(encoding="utf-8")


def names() -> list[str]:
    return sorted(p.stem for p in SQL_DIR.glob("*.sql"))


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


def params_for(statement: str, params: dict[str, object]) -> dict[str, object]:
    """Only the named parameters a statement uses (DuckDB refuses unused ones)."""
    used = set(_PARAM.findall(statement))
    return {k: v for k, v in params.items() if k in used}


def run(con: duckdb.DuckDBPyConnection, name: str, params: dict[str, object] | None = None) -> None:
    """Execute every statement of ``sql/<name>.sql``, each with the parameters it uses."""
    for stmt in statements(name):
        con.execute(stmt, params_for(stmt, params or {}))


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """``BEGIN`` ... ``COMMIT``, or ``ROLLBACK`` on any exception (which is re-raised)."""
    con.execute("BEGIN")
    try:
        yield
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")
