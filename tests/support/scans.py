"""Rows each query reads from each stored table, from DuckDB's own profiling output
(``enable_profiling='json'``: every TABLE_SCAN operator reports its table and
``rows_scanned``), so a test can say that a batch's statements read what the batch
needs, not the stored history."""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pytest

from pipeline.core import sqlfiles


@dataclass
class Scans:
    """Per query name (``sql/<name>.sql``), the most rows one run of it read from each table."""

    rows: dict[str, Counter[str]] = field(default_factory=dict)

    def add(self, name: str, tables: Counter[str]) -> None:
        mine = self.rows.setdefault(name, Counter())
        for table, n in tables.items():
            mine[table] = max(mine[table], n)

    def over(self, limit: int) -> dict[str, dict[str, int]]:
        """The queries that read more than ``limit`` rows of some table, with those tables."""
        return {
            name: {t: n for t, n in tables.items() if n > limit}
            for name, tables in self.rows.items()
            if any(n > limit for n in tables.values())
        }


def table_rows(profile: dict[str, Any]) -> Counter[str]:
    """Rows scanned per table (``main.<table>``) in one query's JSON profile."""
    out: Counter[str] = Counter()

    def walk(node: dict[str, Any]) -> None:
        if node.get("type") == "TABLE_SCAN" and "rows_scanned" in node:
            table = str(node.get("extra_info", {}).get("Table", "?")).split(".")[-1]
            out[table] += int(node["rows_scanned"])
        for child in node.get("children", []):
            walk(child)

    for op in profile.get("operator", []):
        walk(op)
    return out


@contextlib.contextmanager
def recording(
    cons: duckdb.DuckDBPyConnection | tuple[duckdb.DuckDBPyConnection, ...],
    where: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Scans]:
    """Profile every ``sqlfiles`` query run on ``cons`` (one connection or several, each
    with a profile file of its own: they may run on threads of their own) while the block
    runs; yields the record."""
    scans = Scans()
    watched = cons if isinstance(cons, tuple) else (cons,)
    outs = [where / f"profile-{i}.json" for i in range(len(watched))]

    def read(c: duckdb.DuckDBPyConnection, name: str) -> None:
        for con, out in zip(watched, outs, strict=True):
            if c is con and out.exists():
                scans.add(name, table_rows(json.loads(out.read_text())))
                out.unlink()

    def execute_all(c: duckdb.DuckDBPyConnection, name: str, identifiers: Any, params: Any) -> None:
        found = sqlfiles.statements(name)
        for i, stmt in enumerate(found):
            _one_statement(c, identifiers, params, stmt)
            read(c, f"{name}#{i + 1}" if len(found) > 1 else name)

    def after(fn: Callable[..., Any]) -> Callable[..., Any]:
        def call(c: duckdb.DuckDBPyConnection, name: str, /, **params: Any) -> Any:
            result = fn(c, name, **params)
            read(c, name)
            return result

        return call

    monkeypatch.setattr(sqlfiles, "_execute_all", execute_all)
    for fn in ("rows", "dicts", "frame"):
        monkeypatch.setattr(sqlfiles, fn, after(getattr(sqlfiles, fn)))
    for con, out in zip(watched, outs, strict=True):
        con.execute("PRAGMA enable_profiling='json'")
        con.execute(f"PRAGMA profiling_output='{out}'")
    try:
        yield scans
    finally:
        for con in watched:
            con.execute("PRAGMA disable_profiling")


def _one_statement(con: duckdb.DuckDBPyConnection, identifiers: Any, params: Any, stmt: str) -> None:
    """One statement of a file, as ``sqlfiles`` runs each (identifiers filled, its own parameters)."""
    con.execute(sqlfiles._with_identifiers(stmt, identifiers), sqlfiles.params_for(stmt, params))
