"""Caller numbers never appear in the clear: not in the database file, its WAL, the
analysts' snapshot, any report format, a backup or its restore, nor in anything the
commands print. A simulated day is replayed (with malformed lines that carry caller
numbers), every report format and a backup are produced, then every produced byte is
searched for every caller number (as sent, digits only, and without country code);
the databases and parquet files are also searched column by column, since their
pages may be compressed."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import duckdb
import polars as pl

from pipeline.ingest.sources.simulator import SimConfig, simulate, write_jsonl
from tests.support.cli import Cli

MALFORMED_CALLERS = [
    "+8613800001234",
    "+86 138 0000 5678",
    "+8613800009999",
    "+8613800004321",
    "+8613800000001",
    "8613800000002",  # spelled \u002b8613800000002 in the file
    "8613800000003",
]
MALFORMED = [
    '{"type": "call", "event": "offered", "call_id": "m1", "queue": "billing", "caller": "+8613800001234"',
    '["+86 138 0000 5678", "called twice"]',
    '{"type": "call", "event": "offered", "call_id": "m2", "queue": "billing", "at": "yesterday", '
    '"caller": "+8613800009999"}',
    '{"type": "call", "event": "offered", "call_id": "m3", "queue": "billing", "at": "2026-03-02T10:00:00+08:00", '
    '"caller": "+8613800004321", "talk_s": "long"}',
    # Other spellings of a caller in records that are dead-lettered for another reason.
    '{"type": "call", "event": "offered", "call_id": "m4", "queue": "billing", "at": "soon", '
    '"caller":[ "+8613800000001" ]}',
    '{"type": "call", "event": "offered", "call_id": "m5", "queue": "billing", "at": "soon", '
    '"caller":"\\u002b8613800000002"}',
    '{"type": "call", "event": "offered", "call_id": "m6", "queue": "billing", "at": "soon", "caller": 8613800000003}',
]


def variants(number: str) -> set[str]:
    digits = re.sub(r"\D", "", number)
    return {number, "+" + digits, digits, digits[2:] if digits.startswith("86") else digits}


def found_in(blob: bytes, needles: set[bytes]) -> set[bytes]:
    """The needles that occur in ``blob``, each made of '+', digits and spaces only.

    Such a needle can only occur inside a run of those characters, so each run's windows
    of every needle length are looked up in the set: the same answer as ``n in blob`` for
    every needle, in one pass over the blob instead of one per needle (thousands)."""
    assert all(re.fullmatch(rb"[+0-9 ]+", n) for n in needles)
    lengths = sorted({len(n) for n in needles})
    hits: set[bytes] = set()
    for run in re.finditer(rb"[+0-9 ]{%d,}" % lengths[0], blob):
        text = run.group()
        for size in lengths:
            hits.update(w for i in range(len(text) - size + 1) if (w := text[i : i + size]) in needles)
    return hits


def test_the_search_finds_what_a_plain_substring_test_finds() -> None:
    needles = {b"+8613800001234", b"13800001234", b"+86 138 0000 5678", b"8613800009999"}
    blob = b"\x00x+8613800001234\x01 +86 138 0000 5678 \x0286138000099 99 1380000123"
    assert (
        found_in(blob, needles)
        == {n for n in needles if n in blob}
        == {
            b"+8613800001234",
            b"13800001234",
            b"+86 138 0000 5678",
        }
    )


def test_caller_numbers_never_appear_in_the_clear(cli: Cli, tmp_path: Path) -> None:
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
        done = cli.ok(*args, cwd=out, timeout=600)
        logs.extend([done.stdout, done.stderr])
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
    needles = {v.encode() for c in callers for v in variants(c)}
    # the search does find numbers where they are
    assert found_in(src.read_bytes(), needles) >= {c.encode() for c in callers}
    blobs = [(str(p), p.read_bytes()) for p in produced] + [(f"output {i}", t.encode()) for i, t in enumerate(logs)]
    found = [(name, sorted(hits)[:3]) for name, blob in blobs if (hits := found_in(blob, needles))]
    assert not found, found[:10]

    # Column by column (pages of DuckDB and parquet files may be compressed).
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
                hits = found_in(text.encode(), needles)
                assert not hits, (path.name, table, column, sorted(hits)[:3])
            con.close()
        elif path.suffix == ".parquet":
            frame = pl.read_parquet(path)
            assert not found_in(frame.write_csv().encode(), needles), path.name
    # The numbers were really there to find: the hashes of known callers are stored.
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT count(DISTINCT caller_key) FROM call_state").fetchall()[0][0] > 100
    con.close()


HMAC = re.compile(r"hmac:[0-9a-f]{32}")
BANK_HEADER = (
    "vru+line\tcall_id\tcustomer_id\tpriority\ttype\tdate\tvru_entry\tvru_exit\tvru_time\tq_start\tq_exit\t"
    "q_time\toutcome\tser_start\tser_exit\tser_time\tserver"
)


def test_dead_letters_hash_the_caller_in_every_spelling_and_format(cli: Cli, tmp_path: Path) -> None:
    """A dead letter's raw record keeps its shape (a JSON object stays valid JSON) with the caller
    replaced by its hash; a line that is not a JSON object keeps no caller number either."""
    offered = {"type": "call", "event": "offered", "queue": "billing", "at": "soon"}
    inputs: dict[str, tuple[list[str], tuple[str, ...]]] = {
        "spellings.jsonl": (MALFORMED[-3:], ()),
        "calls.csv": (
            [
                "type,event,call_id,queue,at,caller",
                "call,offered,c1,billing,soon,+8613800000011",
                "call,offered,c2,billing,2026-03-02T09:00:00Z,+8613800000012,extra",
                "call,rang,c3,billing,2026-03-02T09:00:00Z,5551",
            ],
            (),
        ),
        "bank.tsv": (
            [
                BANK_HEADER,
                "AA0101\t1\t12345\t2\tPS\t990203\t10:00:00\t10:00:06\t6\t10:00:06\t10:00:36\t30\t"
                "AGENT\t10:00:35\t10:03:35\t-5\tDORIT",
            ],
            ("--format", "mapped"),
        ),
        "queue_log": (["4100000010|4100000010.1|support|NONE|ENTERQUEUE||5551|1"], ("--format", "asterisk")),
    }
    dead: dict[str, list[tuple[str, str, str]]] = {}
    for name, (lines, args) in inputs.items():
        (tmp_path / name).write_text("\n".join(lines) + "\n")
        db = tmp_path / f"{name}.duckdb"
        done = cli("replay", tmp_path / name, "--db", db, *args, cwd=tmp_path)
        # Inputs made of bad records only: such a run says so and exits 1, dead letters stored.
        assert "Traceback" not in done.stderr, done.stderr
        assert done.returncode == 0 or (done.returncode == 1 and "every record was dead-lettered" in done.stderr), (
            done.stderr
        )
        con = duckdb.connect(str(db), read_only=True)
        dead[name] = con.execute("SELECT position, reason, raw FROM dead_letters ORDER BY position::INT").fetchall()
        con.close()

    spelled = dead["spellings.jsonl"]
    bad_at = "bad timestamp (ISO 8601 with offset or epoch seconds): at"
    assert [(p, r) for p, r, _ in spelled] == [("1", bad_at), ("2", bad_at), ("3", bad_at)]
    for (_, _, raw), call_id in zip(spelled, ("m4", "m5", "m6"), strict=True):
        record = json.loads(raw)  # still valid JSON
        assert HMAC.fullmatch(record.pop("caller"))
        assert record == {**offered, "call_id": call_id}

    (p1, r1, raw1), (p2, r2, raw2), (p3, r3, raw3) = dead["calls.csv"]
    assert (p1, r1) == ("2", bad_at)
    record = json.loads(raw1)
    assert HMAC.fullmatch(record.pop("caller")) and record == {**offered, "call_id": "c1"}
    assert (p2, r2) == ("3", "csv: expected 6 fields, got 7") and "8613800000012" not in raw2
    assert (p3, r3) == ("4", "unknown call event: rang")
    record = json.loads(raw3)
    assert HMAC.fullmatch(record.pop("caller"))
    assert record == {**offered, "event": "rang", "call_id": "c3", "at": "2026-03-02T09:00:00Z"}

    [(position, reason, raw)] = dead["bank.tsv"]
    assert (position, reason) == ("2", "negative duration: talk_s")
    assert "12345" not in raw and HMAC.search(raw) and "DORIT" in raw

    [(position, reason, raw)] = dead["queue_log"]
    assert (position, reason) == ("1", "timestamp in the future (more than 300 s ahead of the clock): at")
    assert "5551" not in raw and HMAC.search(raw) and "ENTERQUEUE" in raw
