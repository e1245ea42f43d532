"""Caller numbers never appear in the clear: not in the database file, its WAL, the
analysts' snapshot, any report format, a backup or its restore, nor in anything the
commands print. A simulated day is replayed (with malformed lines that carry caller
numbers), every report format and a backup are produced, then every produced byte is
searched for every caller number (as sent, digits only, and without country code);
the databases and parquet files are also searched column by column, since their
pages may be compressed."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import polars as pl

from pipeline.sources.simulator import SimConfig, simulate, write_jsonl

ENV = {**os.environ, "CALLPULSE_PII_KEY": "pii-test-key-0123456789"}
MALFORMED_CALLERS = ["+8613800001234", "+86 138 0000 5678", "+8613800009999", "+8613800004321"]
MALFORMED = [
    '{"type": "call", "event": "offered", "call_id": "m1", "queue": "billing", "caller": "+8613800001234"',
    '["+86 138 0000 5678", "called twice"]',
    '{"type": "call", "event": "offered", "call_id": "m2", "queue": "billing", "at": "yesterday", '
    '"caller": "+8613800009999"}',
    '{"type": "call", "event": "offered", "call_id": "m3", "queue": "billing", "at": "2026-03-02T10:00:00+08:00", '
    '"caller": "+8613800004321", "talk_s": "long"}',
]


def callpulse(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *args],
        cwd=cwd,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def variants(number: str) -> set[str]:
    digits = re.sub(r"\D", "", number)
    return {number, "+" + digits, digits, digits[2:] if digits.startswith("86") else digits}


def test_caller_numbers_never_appear_in_the_clear(tmp_path: Path) -> None:
    src = tmp_path / "day.jsonl"
    write_jsonl(simulate(SimConfig(seed=21, scale=0.3)), src)
    callers = {json.loads(line).get("caller") for line in src.read_text().splitlines()} - {None}
    assert len(callers) > 100
    with src.open("a") as fh:
        fh.write("\n".join(MALFORMED) + "\n")
    callers |= set(MALFORMED_CALLERS)
    out = tmp_path / "out"
    out.mkdir()
    db = out / "cp.duckdb"
    logs: list[str] = []

    def step(*args: str) -> subprocess.CompletedProcess[str]:
        done = callpulse(*args, cwd=out)
        logs.extend([done.stdout, done.stderr])
        assert done.returncode == 0, done.stderr
        return done

    replay = step("replay", str(src), "--db", str(db))
    assert f"dead-lettered {len(MALFORMED)}" in replay.stderr
    step("sql", "SELECT * FROM calls ORDER BY offered_at LIMIT 200", "--db", str(db))
    step("sql", "SELECT * FROM dead_letters", "--format", "json", "--db", str(db))
    for kind in ("interval", "daily", "agents", "queues", "cases"):
        step("report", kind, "--from", "2026-03-02", "--db", str(db))
        for fmt in ("csv", "parquet", "html"):
            step(
                "report",
                kind,
                "--from",
                "2026-03-02",
                "--format",
                fmt,
                "--out",
                str(out / f"{kind}.{fmt}"),
                "--db",
                str(db),
            )
    step("backup", str(out / "backup.duckdb"), "--db", str(db))
    step("restore", str(out / "backup.duckdb"), str(out / "restored.duckdb"))

    produced = sorted(p for p in out.rglob("*") if p.is_file())
    assert {p.suffix for p in produced} >= {".duckdb", ".csv", ".parquet", ".html"}
    needles = sorted({v.encode() for c in callers for v in variants(c)})
    source = src.read_bytes()
    assert all(c.encode() in source for c in callers)  # the search does find numbers where they are
    blobs = [(str(p), p.read_bytes()) for p in produced] + [(f"output {i}", t.encode()) for i, t in enumerate(logs)]
    found = [(name, n.decode()) for name, blob in blobs for n in needles if n in blob]
    assert not found, found[:10]

    # Column by column (pages of DuckDB and parquet files may be compressed).
    text_needles = sorted({v for c in callers for v in variants(c)})
    for path in produced:
        if path.suffix == ".duckdb":
            con = duckdb.connect(str(path), read_only=True)
            cols = con.execute(
                "SELECT table_name, column_name FROM duckdb_columns() WHERE data_type LIKE 'VARCHAR%' "
                "AND NOT internal AND database_name = current_database()"
            ).fetchall()
            for table, column in cols:
                values = con.execute(f'SELECT DISTINCT CAST("{column}" AS VARCHAR) FROM "{table}"').fetchall()
                text = "\n".join(str(v[0]) for v in values)
                hits = [n for n in text_needles if n in text]
                assert not hits, (path.name, table, column, hits[:3])
            con.close()
        elif path.suffix == ".parquet":
            frame = pl.read_parquet(path)
            text = frame.write_csv()
            assert not [n for n in text_needles if n in text], path.name
    # The numbers were really there to find: the hashes of known callers are stored.
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT count(DISTINCT caller_key) FROM call_state").fetchall()[0][0] > 100
    con.close()
