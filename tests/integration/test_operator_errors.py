"""Mistakes and outages end in one line saying what happened and what to do, with the
right exit code, never a traceback: through the real `callpulse` command."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
from pathlib import Path

import duckdb
import pytest

from devtools.procs import LOOPBACK, free_port
from tests.helpers import offered
from tests.support.cli import callpulse, cli_env, one_error, replay_from_stdin, stderr_lines


def jsonl(path: Path, records: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def stored_events(db: Path) -> int:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return int(con.execute("SELECT count(*) FROM call_events").fetchall()[0][0])
    finally:
        con.close()


def test_ctrl_c_in_replay_exits_130_saying_what_was_stored(tmp_path: Path) -> None:
    db = tmp_path / "db.duckdb"
    batch, whole = 500, 12
    lines = [json.dumps(offered(f"c{i:05d}", i % 60)) + "\n" for i in range(batch * whole + batch // 2)]
    proc = replay_from_stdin(db, batch, tmp_path)
    assert proc.stdin is not None and proc.stderr is not None
    try:
        # write() returns once the pipe (64 KiB) holds the rest: by then the replay has read
        # and stored most of it; the last half batch keeps it waiting for more.
        proc.stdin.write("".join(lines))
        proc.stdin.flush()
        proc.send_signal(signal.SIGINT)
        proc.stdin.close()  # as in a terminal, where Ctrl-C stops the writer too
        code = proc.wait(timeout=300)
        run = subprocess.CompletedProcess(proc.args, code, "", proc.stderr.read())
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    line = one_error(run, 130)
    found = re.fullmatch(
        r"interrupted: stored before Ctrl-C: read ([\d,]+)  accepted ([\d,]+)  duplicates 0  dead-lettered 0  "
        r"in [\d.]+s \([\d,]+ records/s\); run the same replay again to finish "
        r"\(what is stored is skipped as duplicates\)",
        line,
    )
    assert found, line
    read, accepted = (int(g.replace(",", "")) for g in found.groups())
    assert read == accepted == stored_events(db)  # the summary is what the database holds
    assert 0 < accepted < len(lines) and accepted % batch == 0  # whole batches, not all of them


def test_a_port_in_use_is_one_line(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind((LOOPBACK, 0))
        taken.listen()
        port = taken.getsockname()[1]
        cfg = tmp_path / "callpulse.toml"
        cfg.write_text(f"[exporter]\nport = {port}\n")
        run = callpulse(
            "demo", "-c", cfg, "--db", tmp_path / "db.duckdb", "--speed", "0", "--max-events", "10", cwd=tmp_path
        )
    assert one_error(run, 2) == (
        f"error: 127.0.0.1:{port}: cannot serve /metrics and the wallboard there (Address already in use); "
        "set [exporter] port (and host) in callpulse.toml, or pass --no-serve"
    )


def test_the_demo_board_piped_to_a_file_ends_its_last_line(tmp_path: Path) -> None:
    # as a pipe really is: no setting that makes rich treat it as a terminal
    env = {k: v for k, v in cli_env().items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE")}
    run = callpulse(
        "demo",
        "--db",
        tmp_path / "db.duckdb",
        "--no-serve",
        "--speed",
        "0",
        "--max-events",
        "50",
        cwd=tmp_path,
        env=env,
    )
    assert run.returncode == 0, run.stderr
    # what follows it (the shell's prompt, "demo done" in a shared log) starts a line of its own
    last = run.stdout.splitlines()[-1]
    assert run.stdout.endswith("\n") and re.match(r"read \d+  accepted \d+", last), run.stdout[-300:]


def test_kafka_unreachable_at_start_is_retried_then_given_up_in_one_line(tmp_path: Path) -> None:
    cfg = tmp_path / "callpulse.toml"
    cfg.write_text('[kafka]\nstart_timeout = "3s"\n')
    bootstrap = f"127.0.0.1:{free_port()}"
    run = callpulse(
        "worker", "-c", cfg, "--bootstrap", bootstrap, "--db", tmp_path / "db.duckdb", "--no-serve", cwd=tmp_path
    )
    assert run.returncode == 69, run.stderr
    lines = stderr_lines(run)
    assert lines[0].startswith(f"worker: {bootstrap} group callpulse")
    retries, last = lines[1:-1], lines[-1]
    assert retries, run.stderr
    for n, line in enumerate(retries, start=1):
        assert re.fullmatch(
            rf"kafka: {bootstrap} not reachable \(attempt {n}: cannot connect\); retrying in \d+ s", line
        )
    assert retries[0].endswith("retrying in 1 s")  # then 2, 4 ... (cut short by start_timeout)
    attempts = len(retries) + 1
    assert last == (
        f"error: kafka: no broker reachable at {bootstrap} after {attempts} attempts in 3 s (cannot connect); "
        "check [kafka] bootstrap or CALLPULSE_KAFKA_BOOTSTRAP and that the broker runs "
        "([kafka] start_timeout: how long to try)"
    )


def test_grafana_unreachable_is_one_line(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    run = callpulse("dashboards", "publish", "--url", url, cwd=tmp_path, env=cli_env(GRAFANA_TOKEN="not-a-token"))
    assert one_error(run, 69) == (
        f"error: Grafana at {url}: unreachable ([Errno 111] Connection refused); "
        "check --url and that Grafana is running"
    )


@pytest.mark.parametrize(
    ("args", "what"),
    [
        (["replay", "{dir}"], "each input"),
        (["kpis", "--db", "{dir}"], "the database (--db)"),
        (["kpis", "-c", "{dir}"], "--config"),
        (["backup", "{dir}"], "the backup"),
        (["restore", "{dir}", "x.duckdb"], "the backup to restore"),
        (["report", "daily", "--out", "{dir}"], "--out"),
    ],
)
def test_a_directory_given_as_a_file_is_one_line(args: list[str], what: str, tmp_path: Path) -> None:
    folder = tmp_path / "a-folder"
    folder.mkdir()
    run = callpulse(*[a.format(dir=folder) for a in args], cwd=tmp_path)
    label = "config error" if what == "--config" else "error"
    assert one_error(run, 2) == f"{label}: {folder}: is a directory; {what} must be a file"
    assert list(folder.iterdir()) == []  # nothing was created in it
    assert not (tmp_path / "data").exists()  # nor a database in the default place


@pytest.mark.parametrize(
    ("args", "valid"),
    [
        (["replay", "x.jsonl"], "auto, jsonl, csv, parquet, asterisk, asterisk-cdr, connect, freeswitch, mapped"),
        (["kpis"], "table, json"),
        (["sql", "SELECT 1"], "table, csv, json"),
        (["report", "daily"], "table, csv, parquet, html"),
    ],
)
def test_an_unknown_format_lists_the_valid_ones(args: list[str], valid: str, tmp_path: Path) -> None:
    run = callpulse(*args, "--format", "xlsx", cwd=tmp_path)
    assert one_error(run, 2) == f"error: --format: expected one of {valid}, got 'xlsx'"


def test_an_unknown_kpi_window_lists_the_configured_ones(tmp_path: Path) -> None:
    run = callpulse("kpis", "--window", "2h", cwd=tmp_path)
    assert one_error(run, 2) == "error: --window: expected one of 5m, 15m, 1h, got '2h'"


def test_a_csv_of_no_known_format_is_refused_not_read_as_the_bank_export(tmp_path: Path) -> None:
    src = tmp_path / "shifts.csv"
    src.write_text("agent,started,finished,result\na1,2026-03-02 09:00:00,2026-03-02 09:05:00,ok\n")
    db = tmp_path / "db.duckdb"
    run = callpulse("replay", src, "--db", db, cwd=tmp_path)
    assert one_error(run, 2) == (
        f"error: {src}: its header (agent, started, finished, result) matches no known format: not callpulse CSV "
        "(no type column) nor the anonymous_bank export (no call_id, customer_id, date, outcome); for another system's "
        "export pass --format mapped --mapping FILE (see docs/formats.md)"
    )
    assert not db.exists()  # refused before anything was written


def test_a_replay_where_every_record_is_dead_lettered_exits_1(tmp_path: Path) -> None:
    src = tmp_path / "bad.jsonl"
    src.write_text('{"type": "call", "event": "offered"}\nnot json\n{"type": "fax"}\n')
    db = tmp_path / "db.duckdb"
    run = callpulse("replay", src, "--db", db, cwd=tmp_path)
    assert run.returncode == 1, run.stderr
    summary, error = stderr_lines(run)
    assert summary.startswith("read 3  accepted 0  duplicates 0  dead-lettered 3  in ")
    assert error == (
        "error: every record was dead-lettered (3); nothing was stored: see why with "
        'callpulse sql "SELECT reason, count(*) FROM dead_letters GROUP BY reason"'
    )
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT count(*) FROM dead_letters").fetchall() == [(3,)]
    con.close()
    # One good record among them: a normal run.
    jsonl(src, [offered("c1", 1)])
    assert callpulse("replay", src, "--db", db, cwd=tmp_path).returncode == 0
