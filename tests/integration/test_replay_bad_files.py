"""A bad line never stops a replay: whatever the file's format, each bad record is a
dead letter with a reason and its line, every good record is stored, and
accepted + duplicates + dead-lettered = records read. Through the CLI on real DuckDB files."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import duckdb
import polars as pl
import pytest

from tests.helpers import offered
from tests.support.cli import Cli


def replay(cli: Cli, src: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    db = src.with_suffix(".duckdb")
    return cli("replay", src, "--db", db, *args, cwd=src.parent), db


def stored(db: Path) -> tuple[list[str], list[tuple[str, str]]]:
    """Call ids of the stored events, and (position, reason) of the dead letters, in line order."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        calls = [r[0] for r in con.execute("SELECT call_id FROM call_events ORDER BY call_id").fetchall()]
        dead = con.execute("SELECT position, reason FROM dead_letters ORDER BY position::INT").fetchall()
    finally:
        con.close()
    return calls, dead


def test_jsonl_whose_first_line_is_garbage_is_read_with_auto_detection(cli: Cli, tmp_path: Path) -> None:
    src = tmp_path / "day.jsonl"
    lines = [
        "garbage at the top, not JSON",
        json.dumps(offered("c1", 1)),
        json.dumps(offered("c2", 2)),
        "",
        "more garbage",
        json.dumps(offered("c3", 3)),
    ]
    src.write_text("\n".join(lines) + "\n")
    run, db = replay(cli, src)
    assert run.returncode == 0, run.stderr
    assert "read 5  accepted 3  duplicates 0  dead-lettered 2" in run.stderr
    calls, dead = stored(db)
    assert calls == ["c1", "c2", "c3"]
    assert [p for p, _ in dead] == ["1", "5"]
    assert all(reason.startswith("malformed JSON") for _, reason in dead)


def test_two_line_jsonl_with_garbage_first_falls_back_on_the_extension(cli: Cli, tmp_path: Path) -> None:
    src = tmp_path / "short.jsonl"
    src.write_text("#!garbage\n" + json.dumps(offered("c1", 1)) + "\n")
    run, db = replay(cli, src)
    assert run.returncode == 0, run.stderr
    assert "read 2  accepted 1  duplicates 0  dead-lettered 1" in run.stderr
    assert stored(db) == (["c1"], [("1", "malformed JSON: JSONDecodeError")])


CSV_LINES = [
    "type,event,call_id,queue,at",  # line 1: header
    "call,offered,c1,billing,2026-03-02T09:01:00Z",
    "call,offered,c2,billing,2026-03-02T09:02:00Z,one too many",  # line 3
    "call,offered,c3,billing",  # line 4: too few
    "",  # line 5: blank, not a record
    'call,offered,"c4,billing,2026-03-02T09:04:00Z',  # line 6: quote never closed
    "call,offered,c5,billing,2026-03-02T09:05:00Z",
    'call,offered,"c6",billing,2026-03-02T09:06:00Z',  # quoted, fine
    'call,offered,c7,"bill',  # line 9: a quoted field over two lines, fine
    'ing",2026-03-02T09:07:00Z',
    "call,offered,c8,billing,2026-03-02T09:08:00Z",
    'call,offered,c9,billing,"2026-03-02T09:09:00Z',  # line 12: quote never closed, at the end
]
CSV_DEAD = [
    ("3", "csv: expected 5 fields, got 6"),
    ("4", "csv: expected 5 fields, got 4"),
    ("6", "csv: unclosed quote"),
    ("12", "csv: unclosed quote"),
]


@pytest.mark.parametrize("args", [("--format", "csv"), (), ("--format", "csv", "--batch-size", "2")])
def test_csv_bad_rows_are_dead_letters_and_good_rows_are_kept(cli: Cli, tmp_path: Path, args: tuple[str, ...]) -> None:
    src = tmp_path / "calls.csv"
    src.write_text("\n".join(CSV_LINES) + "\n")
    run, db = replay(cli, src, *args)
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    assert "read 9  accepted 5  duplicates 0  dead-lettered 4" in run.stderr
    calls, dead = stored(db)
    assert calls == ["c1", "c5", "c6", "c7", "c8"]
    assert dead == CSV_DEAD
    con = duckdb.connect(str(db), read_only=True)
    queue = con.execute("SELECT queue FROM call_events WHERE call_id = 'c7'").fetchall()
    con.close()
    assert queue == [("bill\ning",)]


def test_parquet_is_read_in_slices_with_row_positions(cli: Cli, tmp_path: Path) -> None:
    rows = [offered(f"c{i}", i) for i in range(1, 6)]
    rows[3] = {**rows[3], "type": "fax"}  # row 4
    src = tmp_path / "calls.parquet"
    pl.DataFrame(rows).write_parquet(src, row_group_size=2)
    run, db = replay(cli, src, "--batch-size", "2")
    assert run.returncode == 0, run.stderr
    assert "read 5  accepted 4  duplicates 0  dead-lettered 1" in run.stderr
    assert stored(db) == (["c1", "c2", "c3", "c5"], [("4", "unknown record type: fax")])
