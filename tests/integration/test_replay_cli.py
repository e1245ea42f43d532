"""The CLI end to end on real DuckDB files: replay, dead letters, idempotence, kpis JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.integration.test_kpis_by_hand import SCENARIO, X
from tests.support.cli import Cli

GOOD = [
    {
        "type": "call",
        "event": "offered",
        "call_id": "g1",
        "queue": "billing",
        "at": "2026-03-02T09:00:00+08:00",
        "caller": X,
    },
    {
        "type": "call",
        "event": "answered",
        "call_id": "g1",
        "queue": "billing",
        "at": "2026-03-02T09:00:07+08:00",
        "agent_id": "a1",
    },
    {
        "type": "call",
        "event": "ended",
        "call_id": "g1",
        "queue": "billing",
        "at": 1772413380,
        "agent_id": "a1",
        "talk_s": 60,
    },
    {
        "type": "cdr",
        "call_id": "g2",
        "queue": "sales",
        "offered_at": "2026-03-02T01:00:00Z",
        "answered_at": "2026-03-02T01:00:20Z",
        "ended_at": "2026-03-02T01:05:00Z",
        "caller": "+8613800000077",
        "wrap_s": 15,
    },
    {
        "type": "cdr",
        "call_id": "g3",
        "queue": "sales",
        "offered_at": "2026-03-02T01:01:00Z",
        "ended_at": "2026-03-02T01:01:30Z",
    },
    {"type": "agent", "agent_id": "a1", "state": "login", "at": "2026-03-02T08:55:00+08:00", "queues": "billing,sales"},
    {"type": "agent", "agent_id": "a1", "state": "not_ready", "reason": "lunch", "at": "2026-03-02T09:10:00+08:00"},
    {"type": "qa", "call_id": "g1", "agent_id": "a1", "score": 77.5, "at": "2026-03-02T09:30:00+08:00"},
]
# (raw line, expected reason prefix): one of every kind of invalid record.
BAD: list[tuple[str, str]] = [
    ('{"type": "call", "event": "offered", "call_id": "b1"', "malformed JSON"),
    ("[1, 2, 3]", "not a JSON object"),
    ('"just a string +8613800000123"', "not a JSON object"),
    ("{}", "missing field: type"),
    ('{"type": "fax", "at": "2026-03-02T09:00:00Z"}', "unknown record type: fax"),
    (
        '{"type": "call", "event": "offered", "queue": "billing", "at": "2026-03-02T09:00:00Z"}',
        "missing field: call_id",
    ),
    (
        '{"type": "call", "event": "rang", "call_id": "b2", "queue": "billing", "at": "2026-03-02T09:00:00Z"}',
        "unknown call event: rang",
    ),
    (
        '{"type": "call", "event": "offered", "call_id": "b3", "queue": "billing", "at": "2026-03-02 09:00:00"}',
        "bad timestamp",
    ),
    (
        '{"type": "call", "event": "ended", "call_id": "g1", "queue": "x", "at": "2026-03-02T09:00:00Z", "talk_s": "long"}',
        "not a number: talk_s",
    ),
    (
        '{"type": "call", "event": "ended", "call_id": "g1", "queue": "y", "at": "2026-03-02T09:00:00Z", "hold_s": -4}',
        "negative duration: hold_s",
    ),
    (
        '{"type": "cdr", "call_id": "b4", "queue": "sales", "offered_at": "2026-03-02T01:00:00Z", "answered_at": "2026-03-02T00:59:00Z", "ended_at": "2026-03-02T01:05:00Z"}',
        "answered before offered",
    ),
    # A live event contradicting a stored one: g3 was offered at 01:01:00.
    (
        '{"type": "call", "event": "answered", "call_id": "g3", "queue": "sales", "at": "2026-03-02T01:00:30Z"}',
        "answered before offered",
    ),
    (
        '{"type": "call", "event": "offered", "call_id": "b5", "queue": "billing", "at": "2099-01-01T00:00:00Z"}',
        "timestamp in the future",
    ),
    (
        '{"type": "agent", "agent_id": "a1", "state": "dancing", "at": "2026-03-02T09:00:00Z"}',
        "unknown agent state: dancing",
    ),
    (
        '{"type": "qa", "call_id": "g1", "agent_id": "a2", "score": 140, "at": "2026-03-02T09:00:00Z"}',
        "score outside 0..100",
    ),
    (
        '{"type": "call", "event": "offered", "call_id": "'
        + "x" * 300
        + '", "queue": "b", "at": "2026-03-02T09:00:00Z"}',
        "field too long: call_id",
    ),
    (
        '{"type": "call", "event": "ended", "call_id": "g1", "queue": "z", "at": "2026-03-02T09:00:00Z", "resolved": "maybe"}',
        "not a boolean: resolved",
    ),
    (
        '{"type": "cdr", "call_id": "b6", "queue": "sales", "offered_at": "2026-03-02T01:00:00Z", "ended_at": "2026-03-02T01:05:00Z", "outcome": "lost"}',
        "unknown outcome: lost",
    ),
    (
        '{"type": "call", "event": "offered", "call_id": "b7", "queue": "billing", "at": "2026-03-02T09:00:00Z", "caller": "+8613800000999", "talk_s": "NaN"}',
        "not a number: talk_s",
    ),
]
KPI_TABLES = [
    "SELECT * FROM kpi_queue_interval ORDER BY ALL",
    "SELECT * FROM kpi_agent_interval ORDER BY ALL",
    "SELECT * FROM calls ORDER BY call_id, queue",
    "SELECT * FROM cases ORDER BY ALL",
]


def write_mixed(path: Path) -> None:
    lines = [json.dumps(r) for r in GOOD] + [raw for raw, _ in BAD]
    # Interleave bad lines between good ones, and add blank lines (not records).
    mixed: list[str] = []
    for i, line in enumerate(lines):
        mixed.append(line)
        if i % 5 == 0:
            mixed.append("")
    path.write_text("\n".join(mixed) + "\n")


def tables(db: Path) -> list[list[tuple[Any, ...]]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return [con.execute(q).fetchall() for q in KPI_TABLES]
    finally:
        con.close()


def test_bad_input_is_dead_lettered_and_nothing_is_lost(cli: Cli, tmp_path: Path) -> None:
    src, db = tmp_path / "mixed.jsonl", tmp_path / "cp.duckdb"
    write_mixed(src)
    first = cli("replay", str(src), "--db", str(db), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    n_good, n_bad = len(GOOD), len(BAD)
    assert f"read {n_good + n_bad}  accepted {n_good}  duplicates 0  dead-lettered {n_bad}" in first.stderr

    con = duckdb.connect(str(db), read_only=True)
    dead = con.execute("SELECT position, reason, raw FROM dead_letters ORDER BY position::INT").fetchall()
    stored = con.execute(
        "SELECT (SELECT count(*) FROM call_events), (SELECT count(*) FROM agent_events), "
        "(SELECT count(*) FROM qa_evals)"
    ).fetchall()[0]
    con.close()
    # 3 live call events + CDR g2 (offered, answered, ended) + CDR g3 (offered, abandoned) = 8
    assert stored == (8, 2, 1)
    assert len(dead) == n_bad
    got = sorted(reason for _, reason, _ in dead)
    for _, expected in BAD:
        assert any(r.startswith(expected) for r in got), f"no dead letter with reason {expected!r}: {got}"
    for _, _, raw in dead:  # no caller number in the clear, not even in dead letters
        assert "8613800000" not in raw

    before = tables(db)
    second = cli("replay", str(src), "--db", str(db), cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert f"read {n_good + n_bad}  accepted 0  duplicates {n_good}  dead-lettered {n_bad}" in second.stderr
    assert tables(db) == before
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT count(*) FROM dead_letters").fetchall()[0][0] == n_bad  # not twice
    con.close()


def test_csv_and_parquet_sources_store_the_same_records(cli: Cli, tmp_path: Path) -> None:
    import polars as pl

    rows = [{k: (",".join(v) if isinstance(v, list) else v) for k, v in r.items()} for r in SCENARIO]
    frame = pl.DataFrame(
        [{k: None if r.get(k) is None else str(r.get(k)) for k in sorted({k for r in rows for k in r})} for r in rows]
    )
    frame.write_csv(tmp_path / "s.csv")
    frame.write_parquet(tmp_path / "s.parquet")
    (tmp_path / "s.jsonl").write_text("\n".join(json.dumps(r) for r in SCENARIO))
    results = []
    for name in ("s.jsonl", "s.csv", "s.parquet"):
        db = tmp_path / f"{name}.duckdb"
        run = cli("replay", str(tmp_path / name), "--db", str(db), cwd=tmp_path)
        assert run.returncode == 0, run.stderr
        assert f"accepted {len(SCENARIO)}" in run.stderr, run.stderr
        results.append(tables(db))
    assert results[0] == results[1] == results[2]


def test_stdin_source(cli: Cli, tmp_path: Path) -> None:
    db = tmp_path / "cp.duckdb"
    run = cli("replay", "-", "--db", db, cwd=tmp_path, stdin="\n".join(json.dumps(r) for r in SCENARIO))
    assert run.returncode == 0, run.stderr
    assert f"accepted {len(SCENARIO)}" in run.stderr


def test_kpis_json_equals_hand_computed_values(cli: Cli, tmp_path: Path) -> None:
    src, db = tmp_path / "s.jsonl", tmp_path / "cp.duckdb"
    src.write_text("\n".join(json.dumps(r) for r in SCENARIO))
    assert cli("replay", str(src), "--db", str(db), cwd=tmp_path).returncode == 0
    run = cli("kpis", "--format", "json", "--db", str(db), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    doc = json.loads(run.stdout)
    assert doc["watermark"] == "2026-03-02T01:20:00+00:00"  # 09:20 +08:00: a1's logout
    billing = doc["queues"]["billing"]
    hour = billing["windows"]["1h"]  # 08:20-09:20: every call of the scenario
    assert (hour["offered"], hour["answered"], hour["abandoned"], hour["short_abandoned"], hour["exited"]) == (
        8,
        3,
        3,
        1,
        1,
    )
    assert hour["service_level"] == pytest.approx(2 / 7)
    assert hour["asa_s"] == pytest.approx(15)
    assert hour["abandon_rate"] == pytest.approx(2 / 7)
    assert hour["aht_s"] == pytest.approx(560 / 3)
    quarter = billing["windows"]["15m"]  # 09:05-09:20: c6 (exited), c7 (answered in 15 s), c8 (waiting)
    assert (quarter["offered"], quarter["answered"], quarter["exited"], quarter["waiting"]) == (3, 1, 1, 1)
    assert quarter["service_level"] == pytest.approx(1 / 3)
    assert quarter["asa_s"] == 15 and quarter["aht_s"] == 120 and quarter["abandon_rate"] == 0
    five = billing["windows"]["5m"]  # 09:15-09:20: no calls, so every ratio is undefined
    assert five["offered"] == 0 and five["service_level"] is None and five["asa_s"] is None
    assert billing["interval"]["start"] == "2026-03-02T01:15:00+00:00" and billing["interval"]["offered"] == 0
    assert billing["live"] == {"calls_waiting": 1, "oldest_wait_s": 360.0, "agents": []}
    assert billing["targets"]["service_level"] == 0.8 and billing["targets"]["sl_threshold_s"] == 15


def test_config_error_is_a_message_not_a_traceback(cli: Cli, tmp_path: Path) -> None:
    cfg = tmp_path / "callpulse.toml"
    cfg.write_text('[queues.billing]\nsl_formula = "magic"\n')
    run = cli("kpis", "--config", str(cfg), "--db", str(tmp_path / "x.duckdb"), cwd=tmp_path)
    assert run.returncode == 2
    assert "queues.billing.sl_formula: must be one of" in run.stderr
    assert "Traceback" not in run.stderr


def test_replay_without_pii_key_explains(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "s.jsonl").write_text(json.dumps(GOOD[0]))
    run = cli.without("CALLPULSE_PII_KEY")("replay", "s.jsonl", "--db", "x.duckdb", cwd=tmp_path)
    assert run.returncode == 2 and "CALLPULSE_PII_KEY: not set" in run.stderr
