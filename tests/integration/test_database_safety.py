"""Operator safety around the database file, through the real CLI: `restore --force`
refuses a file a running pipeline holds; a damaged or foreign file is "not a callpulse
database" for every command, never "in use", and is left as it was; the PII key must be
long enough and the one the database was written with."""

from __future__ import annotations

import hmac
import json
from pathlib import Path

import duckdb
import pytest

from devtools.procs import free_port, wait_until
from tests.helpers import offered
from tests.support.cli import PII_KEY, callpulse, cli_env, one_error, replay_from_stdin

LOCKED = "Could not set lock"


def write_calls(path: Path, *call_ids: str) -> Path:
    path.write_text("".join(json.dumps(offered(c, i)) + "\n" for i, c in enumerate(call_ids)))
    return path


def call_ids(db: Path) -> list[str]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return [r[0] for r in con.execute("SELECT call_id FROM call_events ORDER BY call_id").fetchall()]
    finally:
        con.close()


def replayed(tmp_path: Path, name: str, *ids: str) -> Path:
    """A callpulse database holding the offered calls ``ids``."""
    db = tmp_path / f"{name}.duckdb"
    run = callpulse("replay", write_calls(tmp_path / f"{name}.jsonl", *ids), "--db", db, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    return db


def held_by_another_process(db: Path) -> bool:
    try:
        duckdb.connect(str(db), read_only=True).close()
    except duckdb.IOException as exc:
        return LOCKED in str(exc)
    return False


# -- restore over a running pipeline's file ---------------------------------------------


def test_restore_force_refuses_the_file_of_a_running_pipeline(tmp_path: Path) -> None:
    backup = tmp_path / "backup.duckdb"
    run = callpulse("backup", backup, "--db", replayed(tmp_path, "old", "b1", "b2"), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    live = tmp_path / "live.duckdb"
    # A pipeline that stays up while its input does: a replay of standard input.
    holder = replay_from_stdin(live, 1, tmp_path)
    assert holder.stdin is not None and holder.stderr is not None
    try:
        holder.stdin.write(json.dumps(offered("live1", 1)) + "\n")
        holder.stdin.flush()
        wait_until(lambda: held_by_another_process(live), 120, "the replay to hold its database")
        run = callpulse("restore", backup, live, "--force", cwd=tmp_path)
        assert one_error(run, 2) == (
            f"error: {live}: in use by another process (PID {holder.pid}); stop the pipeline using it, then restore"
        )
        holder.stdin.write(json.dumps(offered("live2", 2)) + "\n")
        holder.stdin.close()
        assert holder.wait(timeout=120) == 0, holder.stderr.read()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
    assert call_ids(live) == ["live1", "live2"]  # nothing the running pipeline stored was lost
    # Stopped, the same restore goes through.
    run = callpulse("restore", backup, live, "--force", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert call_ids(live) == ["b1", "b2"]


# -- damaged and foreign files ------------------------------------------------------------


def damaged(kind: str, tmp_path: Path) -> Path:
    """A file at a database's place that is no callpulse database."""
    path = tmp_path / f"{kind}.duckdb"
    if kind == "empty":
        path.touch()
    elif kind == "text":
        path.write_text("call_id,queue\nc1,billing\n")
    elif kind == "truncated":
        good = replayed(tmp_path, "whole", "c1")
        path.write_bytes(good.read_bytes()[:5000])
    elif kind == "foreign":
        con = duckdb.connect(str(path))
        con.execute("CREATE TABLE orders (id INTEGER)")
        con.close()
    return path


def command(name: str, db: Path, tmp_path: Path) -> list[str | Path]:
    src = write_calls(tmp_path / "in.jsonl", "c9")
    return {
        "replay": ["replay", src, "--db", db],
        "demo": ["demo", "--db", db, "--no-serve", "--speed", "0", "--max-events", "10"],
        "worker": ["worker", "--db", db, "--no-serve", "--bootstrap", f"127.0.0.1:{free_port()}"],
        "kpis": ["kpis", "--db", db],
        "sql": ["sql", "SELECT 1", "--db", db],
        "report": ["report", "daily", "--db", db],
        "backup": ["backup", tmp_path / "copy.duckdb", "--db", db, "--wait", "1"],
        "restore": ["restore", db, tmp_path / "restored.duckdb"],
    }[name]


COMMANDS = ["replay", "demo", "worker", "kpis", "sql", "report", "backup", "restore"]
REASONS = {
    "empty": "an empty file",
    "text": "not a DuckDB file",
    "truncated": "a damaged DuckDB file: Could not read enough bytes",
    "foreign": "a DuckDB file without the call_events, pipeline_state table",
}


# Every command meets a damaged file, and every kind of damage is met by a writing and a reading command.
CASES = [(c, ["empty", "text"][i % 2]) for i, c in enumerate(COMMANDS)] + [
    ("replay", "truncated"),
    ("kpis", "truncated"),
    ("replay", "foreign"),
    ("sql", "foreign"),
]


@pytest.mark.parametrize(("name", "kind"), CASES)
def test_a_damaged_file_is_not_a_callpulse_database_for_every_command(name: str, kind: str, tmp_path: Path) -> None:
    db = damaged(kind, tmp_path)
    before = db.read_bytes()
    line = one_error(callpulse(*command(name, db, tmp_path), cwd=tmp_path), 2, after="worker: ")
    hint = (
        "give a backup made by `callpulse backup`"
        if name == "restore"
        else f"restore from a backup (callpulse restore BACKUP {db} --force) or use another --db"
    )
    assert line.startswith(f"error: {db}: not a callpulse database ({REASONS[kind]}"), line
    assert line.endswith(f"); {hint}"), line
    assert "in use" not in line
    if kind != "foreign":  # (a foreign DuckDB file may be checkpointed by opening it)
        assert db.read_bytes() == before  # left as it was for the operator to look at
    assert not (tmp_path / "copy.duckdb").exists() and not (tmp_path / "restored.duckdb").exists()


def test_restore_force_replaces_a_damaged_file(tmp_path: Path) -> None:
    backup = tmp_path / "backup.duckdb"
    assert callpulse("backup", backup, "--db", replayed(tmp_path, "old", "b1"), cwd=tmp_path).returncode == 0
    db = damaged("text", tmp_path)
    assert one_error(callpulse("restore", backup, db, cwd=tmp_path), 2).endswith("use --force to overwrite it")
    run = callpulse("restore", backup, db, "--force", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert call_ids(db) == ["b1"]


# -- the PII key ----------------------------------------------------------------------------


def test_a_short_pii_key_is_refused(tmp_path: Path) -> None:
    src = write_calls(tmp_path / "in.jsonl", "c1")
    run = callpulse("replay", src, "--db", tmp_path / "x.duckdb", cwd=tmp_path, env=cli_env(CALLPULSE_PII_KEY="x" * 15))
    assert one_error(run, 2) == (
        "config error: CALLPULSE_PII_KEY: too short (15 bytes; at least 16): make one with `openssl rand -hex 32`"
    )
    assert not (tmp_path / "x.duckdb").exists()
    run = callpulse("replay", src, "--db", tmp_path / "x.duckdb", cwd=tmp_path, env=cli_env(CALLPULSE_PII_KEY="x" * 16))
    assert run.returncode == 0, run.stderr


def test_another_pii_key_than_the_database_was_written_with_is_refused(tmp_path: Path) -> None:
    db = replayed(tmp_path, "db", "c1")
    con = duckdb.connect(str(db), read_only=True)
    stored = con.execute("SELECT pii_key_fingerprint FROM pipeline_state").fetchall()[0][0]
    con.close()
    # a keyed hash of a fixed text, never the key itself
    assert stored == hmac.digest(PII_KEY.encode(), b"callpulse pii key fingerprint v1", "sha256").hex()[:32]
    other = "another-key-0123456789"
    other_fp = hmac.digest(other.encode(), b"callpulse pii key fingerprint v1", "sha256").hex()[:32]
    src = write_calls(tmp_path / "more.jsonl", "c2")
    for args in (["replay", src, "--db", db], ["demo", "--db", db, "--no-serve", "--speed", "0", "--max-events", "5"]):
        run = callpulse(*args, cwd=tmp_path, env=cli_env(CALLPULSE_PII_KEY=other))
        assert one_error(run, 2) == (
            f"error: {db}: written with a different CALLPULSE_PII_KEY (key fingerprint {stored[:12]}, "
            f"this key's {other_fp[:12]}); its callers would get new hashes and repeat contacts would no "
            "longer match: set the key this database was written with, or use another --db"
        )
    assert call_ids(db) == ["c1"]
    # A backup keeps the fingerprint: its restore is refused the other key too.
    backup, restored = tmp_path / "b.duckdb", tmp_path / "restored.duckdb"
    assert callpulse("backup", backup, "--db", db, cwd=tmp_path).returncode == 0
    assert callpulse("restore", backup, restored, cwd=tmp_path).returncode == 0
    run = callpulse("replay", src, "--db", restored, cwd=tmp_path, env=cli_env(CALLPULSE_PII_KEY=other))
    assert "written with a different CALLPULSE_PII_KEY" in one_error(run, 2)
    # The right key goes on writing.
    assert callpulse("replay", src, "--db", restored, cwd=tmp_path).returncode == 0
    assert call_ids(restored) == ["c1", "c2"]
