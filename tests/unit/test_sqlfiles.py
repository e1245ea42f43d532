"""SQL lives only in ``sql/<stage>/<name>.sql``: each file says what it returns, every name
the code asks for exists (and every file is asked for), no Python module of the product
holds a statement of its own, and the loader's helpers bind, run and escape as documented.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import duckdb
import pytest

from pipeline.core import sqlfiles

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("pipeline", "metrics", "dashboards")
# Where query names are written: the product and the tests / scripts that read the same files.
CALLERS = (*PRODUCT, "tests", "scripts")
STAGES = ("schema", "ingest", "kpi", "export", "analyst", "breaches", "reports", "ops")
QUERY_NAME = re.compile(rf"^(?:{'|'.join(STAGES)})/[a-z0-9_]+$")

# A string that starts like a statement. Upper case (the house style for SQL) for any
# statement keyword; lower case only where the words around it can't be English prose.
SQL_UPPER = re.compile(
    r"^\s*(?:SELECT|INSERT|CREATE|UPDATE|DELETE|WITH|PRAGMA|ATTACH|DETACH|COPY|SET|CHECKPOINT"
    r"|DROP|ALTER|BEGIN|COMMIT|ROLLBACK|EXPORT|IMPORT|INSTALL|LOAD|SUMMARIZE|DESCRIBE)(?:\s|$)"
)
SQL_LOWER = re.compile(
    r"^\s*(?:select\s.+\sfrom\s|insert\s+(?:or\s+\w+\s+)?into\s|delete\s+from\s|update\s+\w+\s+set\s"
    r"|create\s+(?:or\s+replace\s+)?(?:temp\s+|temporary\s+)?(?:table|view|macro|index)\s"
    r"|with\s+\w+\s+as\s*\(|pragma\s|attach\s|checkpoint\b|set\s+\w+\s*=)",
    re.IGNORECASE | re.DOTALL,
)


def python_files(*folders: str) -> list[Path]:
    here = Path(__file__).resolve()  # this file writes wrong names on purpose
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py") if p.resolve() != here)


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the docstring constants of a module, its classes and functions."""
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def inline_sql(source: str) -> list[tuple[int, str]]:
    """(line, text) of every string literal or f-string in ``source`` that starts like a SQL statement."""
    tree = ast.parse(source)
    skip = _docstrings(tree)
    inner: set[int] = set()  # the constant parts of f-strings, judged as part of their f-string
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            inner.update(id(v) for v in node.values)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if id(node) in skip or id(node) in inner:
                continue
            text = node.value
        elif isinstance(node, ast.JoinedStr):
            text = "".join(v.value if isinstance(v, ast.Constant) else "{x}" for v in node.values)
        else:
            continue
        if SQL_UPPER.match(text) or SQL_LOWER.match(text):
            found.append((node.lineno, text))
    return found


def names_in_code() -> dict[str, list[str]]:
    """Every query name written in the code (a string like ``"kpi/queue_window"``), and where."""
    where: dict[str, list[str]] = {}
    for path in python_files(*CALLERS):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and QUERY_NAME.match(node.value):
                where.setdefault(node.value, []).append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return where


LOADERS = {"load", "statements", "run", "run_with_identifiers", "rows", "first", "dicts", "frame"}


def test_every_sql_file_starts_with_a_comment_saying_what_it_does() -> None:
    assert sqlfiles.names(), f"no .sql files found under {sqlfiles.SQL_DIR}"
    bad = []
    for name in sqlfiles.names():
        first = sqlfiles.load(name).splitlines()[0] if sqlfiles.load(name) else ""
        if not re.match(r"^-- \S.{15,}", first):
            bad.append(f"{name}: {first!r}")
    assert not bad, "every .sql file's first line is a comment saying what it returns:\n" + "\n".join(bad)


def test_queries_sit_in_stage_folders() -> None:
    loose = [n for n in sqlfiles.names() if not QUERY_NAME.match(n)]
    assert not loose, f"queries outside sql/<stage>/ ({', '.join(STAGES)}): {loose}"


def test_every_name_the_code_loads_exists_and_every_file_is_loaded() -> None:
    used = names_in_code()
    missing = {n: w for n, w in used.items() if n not in sqlfiles.names()}
    assert not missing, f"names with no sql file: {missing}"
    unused = sorted(set(sqlfiles.names()) - set(used))
    assert not unused, f"sql files nothing loads (delete them or load them by name): {unused}"


def test_loader_calls_name_their_query_with_a_literal() -> None:
    """So the test above sees every name: ``sqlfiles.run(con, "kpi/x")``, never a built name."""
    built = []
    for path in python_files(*PRODUCT):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in LOADERS
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "sqlfiles"
            ):
                arg = node.args[1] if node.func.attr not in ("load", "statements") else node.args[0]
                if not (isinstance(arg, ast.Constant) and isinstance(arg.value, str)) and not isinstance(arg, ast.Name):
                    built.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not built, f"query names built at run time: {built}"


def test_no_inline_sql_in_the_product() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{line}: {text[:70]!r}"
        for path in python_files(*PRODUCT)
        for line, text in inline_sql(path.read_text(encoding="utf-8"))
    ]
    assert not found, "SQL belongs in sql/<stage>/<name>.sql, loaded by name:\n" + "\n".join(found)


@pytest.mark.parametrize(
    "source",
    [
        'con.execute("SELECT 1")',
        'con.execute(f"INSERT INTO {t} SELECT * FROM x")',
        "con.execute('SET TimeZone = \\'UTC\\'')",
        'con.execute("CHECKPOINT")',
        'con.execute("ROLLBACK")',
        'Q = """\n    WITH a AS (SELECT 1) SELECT * FROM a"""',
        'con.sql("select queue from calls")',
        'con.execute("delete from calls where x = 1")',
        'con.execute("create or replace temp table t as select 1")',
        'con.execute(f"attach {path} as cp")',
    ],
)
def test_the_inline_sql_scan_finds_statements(source: str) -> None:
    assert inline_sql(source), source


@pytest.mark.parametrize(
    "source",
    [
        'def f():\n    """Select the rows; SET up nothing. SELECT is fine in a docstring."""',
        'help_text = "With --follow: stop after this many seconds"',
        'log.info("Deleted %d rows from the calls table", n)',
        'msg = "Create or update the boards"',
        'name = "kpi/queue_window"',
    ],
)
def test_the_inline_sql_scan_leaves_prose_alone(source: str) -> None:
    assert not inline_sql(source), source


def test_an_unknown_name_says_which_names_are_close() -> None:
    with pytest.raises(KeyError, match=r"kpi/queue_window"):
        sqlfiles.load("kpi/queue_windw")
    with pytest.raises(KeyError, match="no query named"):
        sqlfiles.load("../pyproject")


def test_names_are_paths_under_sql_without_the_suffix() -> None:
    expected = sorted(
        p.relative_to(sqlfiles.SQL_DIR).with_suffix("").as_posix() for p in sqlfiles.SQL_DIR.rglob("*.sql")
    )
    assert list(sqlfiles.names()) == expected
    assert "kpi/queue_window" in sqlfiles.names()


def test_helpers_bind_only_the_parameters_each_statement_uses() -> None:
    con = duckdb.connect()
    sqlfiles.run(con, "schema/tables")
    sqlfiles.run(con, "schema/init_pipeline_state", interval_s=900, timezone="Asia/Shanghai", unused=1)
    assert sqlfiles.rows(con, "schema/pipeline_state") == [(None, 900, "Asia/Shanghai")]
    assert sqlfiles.first(con, "schema/pipeline_state") == (None, 900, "Asia/Shanghai")
    assert sqlfiles.dicts(con, "schema/pipeline_state") == [
        {"watermark": None, "interval_s": 900, "timezone": "Asia/Shanghai"}
    ]
    assert sqlfiles.frame(con, "schema/pipeline_state").rows() == [(None, 900, "Asia/Shanghai")]
    assert sqlfiles.first(con, "schema/queue_settings_row", queue="nobody") is None
    with pytest.raises(ValueError, match="statements"):
        sqlfiles.rows(con, "schema/tables")  # many statements: not a query that returns rows


def test_transaction_rolls_back_on_error() -> None:
    con = duckdb.connect()
    sqlfiles.run(con, "schema/tables")
    with pytest.raises(RuntimeError), sqlfiles.transaction(con):
        sqlfiles.run(con, "schema/init_pipeline_state", interval_s=900, timezone="UTC")
        raise RuntimeError("boom")
    assert sqlfiles.rows(con, "schema/pipeline_state") == []


@pytest.mark.parametrize("table", ["plain", 'with "quotes"', "semi; DROP TABLE plain; --", "Mixed Case"])
def test_built_identifiers_are_escaped(table: str) -> None:
    """The backup's table copy (the one place identifiers are built) with hostile table names."""
    con = duckdb.connect()
    con.execute("ATTACH ':memory:' AS src")  # test setup: two databases to copy between
    con.execute("ATTACH ':memory:' AS dst")
    con.execute(f"CREATE TABLE src.main.{sqlfiles.quote_identifier(table)} (a INTEGER)")
    con.execute(f"INSERT INTO src.main.{sqlfiles.quote_identifier(table)} VALUES (1), (2)")
    ids = {"src": "src", "dst": "dst", "table": table}
    sqlfiles.run_with_identifiers(con, "ops/copy_new_table", ids)
    sqlfiles.run_with_identifiers(con, "ops/replace_table", ids)  # replaces, does not append
    assert [r[0] for r in sqlfiles.rows(con, "ops/base_tables", db="dst")] == [table]
    copied = con.execute(f"SELECT a FROM dst.main.{sqlfiles.quote_identifier(table)} ORDER BY a").fetchall()
    assert copied == [(1,), (2,)]


def test_an_identifier_the_file_does_not_use_is_refused() -> None:
    con = duckdb.connect()
    with pytest.raises(KeyError, match="placeholder"):
        sqlfiles.run_with_identifiers(con, "ops/detach", {"database": "x"})


def test_sql_readme_lists_every_file() -> None:
    readme = (ROOT / "sql" / "README.md").read_text(encoding="utf-8")
    listed: set[str] = set()
    folder = None
    for line in readme.splitlines():
        if heading := re.match(r"^### `(\w+)/`", line):
            folder = heading.group(1)
        elif (item := re.match(r"^- `(\w+)\.sql`: \S", line)) and folder:
            listed.add(f"{folder}/{item.group(1)}")
    assert sorted(listed) == list(sqlfiles.names()), (
        f"sql/README.md: not listed {sorted(set(sqlfiles.names()) - listed)}, "
        f"no such file {sorted(listed - set(sqlfiles.names()))}"
    )
