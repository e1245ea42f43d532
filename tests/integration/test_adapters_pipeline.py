"""Acceptance tests of "Real telephony inputs": other systems' files through
`callpulse replay` (adapter → validation → DuckDB) and the stable views, against
numbers worked out by hand from the fixtures (tests/fixtures/adapters/).

KPI defaults throughout: SL threshold 15 s, short abandon < 5 s, negative formula
(answered_in_sl / (offered - short)), abandon rate (abandoned - short) / (offered -
short), AHT = mean talk + hold + wrap of handled calls, 15-minute intervals in UTC.

Asterisk queue_log, pipeline_queue_log.txt (T = 1709542800 = 2024-03-04 09:00:00 UTC):

  call        queue    entered  closing line                       outcome   wait talk agent
  ...810.1  A support  T+10     RINGNOANSWER 1001 T+20, ABANDON T+30 abandoned  20   -   -
  ...812.2  B support  T+12     CONNECT 2002 T+25, TRANSFER T+100    answered   13  75  SIP/2002 (*)
  ...812.2  B sales    T+101    CONNECT 3003 T+110, COMPLETE T+200   answered    9  90  SIP/3003
  ...840.3  C support  T+40     ABANDON T+43                         abandoned   3 (short)
  ...850.4  D support  T+50     CONNECT 1001 T+55, COMPLETE T+175    answered    5 120  PJSIP/1001
  ...860.5  E support  T+60     EXITWITHTIMEOUT T+360                exited    300   -
  ...870.6  F support  T+70     CONNECT 2002 T+130, COMPLETE T+250   answered   60 120  SIP/2002
  ...400.13 G support  T+600    none: the REMOVEMEMBER lines at T+15060 (13:11) push the
                                watermark past T+600 + 4 h, the orphan rule closes it:
                                                                     exited  14400
  (*) transferred to sales

  support 09:00: offered 7, answered 3 (B D F), abandoned 2 (A C), short 1 (C),
    exited 2 (E G), answered_in_sl 2 (B 13 s, D 5 s), SL 2/(7-1) = 1/3,
    ASA (13+5+60)/3 = 26, abandon rate (2-1)/(7-1) = 1/6, AHT (75+120+120)/3 = 105,
    transfer rate 1/3, max wait 14400.
  sales 09:00: offered 1, answered 1 in SL, SL 1, ASA 9, abandon rate 0, AHT 90.

  PJSIP/1001 pauses "lunch" T+180 .. UNPAUSE T+480: not_ready/lunch 09:03:00-09:08:00, 300 s.
  Five lines are garbage (dead letters): line 10 (1 field), 19 (3 fields), 24 (bad
  timestamp), 25 (unknown verb FROBNICATE), 26 (PAUSE without an agent).

  Records the adapter makes: ADDMEMBER x3 → login + ready (6); ENTERQUEUE x8 → offered (8;
  a 9th has the bad timestamp); CONNECT x4 → answered + busy (8); ABANDON x2 (2); TRANSFER
  → transferred + ended + ready (3); COMPLETE* x3 → ended + ready (6); EXITWITHTIMEOUT (1);
  PAUSE (1); UNPAUSE (1); REMOVEMEMBER x3 → logout (3); QUEUESTART, RINGNOANSWER nothing:
  39 accepted + 5 dead letters = 44 read.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest

from tests.support.cli import Cli
from tests.support.shared import need, shared_file

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "adapters"
QUEUE_LOG = FIXTURES / "pipeline_queue_log.txt"
CTRS = FIXTURES / "pipeline_ctrs.jsonl"
BANK_INTERVAL = FIXTURES / "bank_interval.tsv"
ACD_CSV, ACD_MAPPING = FIXTURES / "acd_export.csv", FIXTURES / "acd_export.toml"
BANK = shared_file("data", "anonymous-bank-1999-02.tsv")

KPI_COLUMNS = (
    "offered, answered, abandoned, short_abandoned, exited, answered_in_sl, service_level, asa_s, abandon_rate, aht_s"
)
CALL_COLUMNS = "call_id, queue, outcome, wait_s, talk_s, agent_id"
TABLES = [
    "SELECT * FROM calls ORDER BY call_id, queue",
    "SELECT * FROM kpi_queue_interval ORDER BY ALL",
    "SELECT * FROM kpi_agent_interval ORDER BY ALL",
    "SELECT * EXCLUDE (queues) FROM agent_states ORDER BY ALL",
]


def replay(cli: Cli, src: Path, db: Path, *extra: str) -> str:
    """``callpulse replay`` into ``db``, which must succeed: its summary (stderr)."""
    return cli.ok("replay", src, "--db", db, *extra, cwd=db.parent).stderr


def query(db: Path, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def kpi_rows(db: Path) -> dict[tuple[str, datetime], tuple[Any, ...]]:
    rows = query(db, f"SELECT queue, interval_start, {KPI_COLUMNS} FROM kpi_queue_interval")
    return {(q, start.astimezone(UTC)): tuple(rest) for q, start, *rest in rows}


def approx(values: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(pytest.approx(v) if isinstance(v, float) else v for v in values)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def tables(db: Path) -> list[list[tuple[Any, ...]]]:
    return [query(db, sql) for sql in TABLES]


# -- 1. each adapter, one fixture each, calls and a whole interval by hand -------------


def test_asterisk_queue_log_calls_kpis_agents_and_dead_letters(cli: Cli, tmp_path: Path) -> None:
    db = tmp_path / "cp.duckdb"
    err = replay(cli, QUEUE_LOG, db)  # --format auto detects the queue_log
    assert "read 44  accepted 39  duplicates 0  dead-lettered 5" in err

    assert query(db, f"SELECT {CALL_COLUMNS} FROM calls ORDER BY offered_at, queue") == [
        ("1709542810.1", "support", "abandoned", 20, None, None),  # A: rang 1001, no answer
        ("1709542812.2", "support", "answered", 13, 75, "SIP/2002"),  # B, then transferred
        ("1709542840.3", "support", "abandoned", 3, None, None),  # C: short abandon
        ("1709542850.4", "support", "answered", 5, 120, "PJSIP/1001"),  # D
        ("1709542860.5", "support", "exited", 300, None, None),  # E: timeout
        ("1709542870.6", "support", "answered", 60, 120, "SIP/2002"),  # F
        ("1709542812.2", "sales", "answered", 9, 90, "SIP/3003"),  # B in sales
        ("1709543400.13", "support", "exited", 14400, None, None),  # G: orphan, 4 h
    ]
    assert query(db, "SELECT call_id, queue FROM calls WHERE transferred") == [("1709542812.2", "support")]
    # G was closed by the orphan rule at its offer + 4 h
    assert query(db, "SELECT exited_at FROM calls WHERE call_id = '1709543400.13'")[0][0] == utc(2024, 3, 4, 13, 10)

    assert kpi_rows(db) == {
        ("support", utc(2024, 3, 4, 9, 0)): approx((7, 3, 2, 1, 2, 2, 1 / 3, 26.0, 1 / 6, 105.0)),
        ("sales", utc(2024, 3, 4, 9, 0)): approx((1, 1, 0, 0, 0, 1, 1.0, 9.0, 0.0, 90.0)),
    }
    assert query(db, "SELECT transfer_rate, max_wait_s FROM kpi_queue_interval WHERE queue = 'support'") == [
        (pytest.approx(1 / 3), 14400)
    ]

    # the pause with its reason is a not_ready segment of 300 s (T+180 .. T+480)
    assert query(
        db,
        "SELECT agent_id, state, reason, started_at, ended_at, duration_s FROM agent_states WHERE state = 'not_ready'",
    ) == [("PJSIP/1001", "not_ready", "lunch", utc(2024, 3, 4, 9, 3), utc(2024, 3, 4, 9, 8), 300)]
    # PJSIP/1001 in 09:00-09:15: ready T+1..T+55 (54) + T+175..T+180 (5) + T+480..T+900 (420)
    # = 479 s, busy with D T+55..T+175 = 120 s, not ready 300 s; one call handled in 120 s.
    assert query(
        db,
        "SELECT handled, aht_s, ready_s, busy_s, not_ready_s FROM kpi_agent_interval "
        "WHERE agent_id = 'PJSIP/1001' AND interval_start = ?",
        [utc(2024, 3, 4, 9, 0)],
    ) == [(1, 120, 479, 120, 300)]
    assert query(db, "SELECT agent_id, state FROM agent_states WHERE ended_at IS NULL ORDER BY 1") == [
        ("PJSIP/1001", "logout"),
        ("SIP/2002", "logout"),
        ("SIP/3003", "logout"),
    ]

    dead = query(db, "SELECT position, reason, raw FROM dead_letters ORDER BY position::INT")
    assert [(p, r) for p, r, _ in dead] == [
        ("10", "not a queue_log line: 1 fields, need 5+"),
        ("19", "not a queue_log line: 3 fields, need 5+"),
        ("24", "bad timestamp 'notanumber'"),
        ("25", "unknown queue_log event 'FROBNICATE'"),
        ("26", "PAUSE without an agent"),
    ]
    assert all("555123" not in raw for _, _, raw in dead)  # caller numbers masked

    # the same file again: nothing new, nothing twice
    before = tables(db)
    again = replay(cli, QUEUE_LOG, db)
    assert "read 44  accepted 0  duplicates 39  dead-lettered 5" in again
    assert tables(db) == before
    assert query(db, "SELECT count(*) FROM dead_letters") == [(5,)]


def test_asterisk_database_style_times_use_the_site_time_zone(cli: Cli, tmp_path: Path) -> None:
    # queue_log kept in a database: naive local times, read in [site] timezone
    # Europe/Helsinki (UTC+2 in March 2024): 11:00:10 local = 09:00:10 UTC.
    src, db, cfg = tmp_path / "queue_log", tmp_path / "cp.duckdb", tmp_path / "callpulse.toml"
    src.write_text(
        "2024-03-04 11:00:10|c1|support|NONE|ENTERQUEUE||+15551230001|1\n"
        "2024-03-04 11:00:18|c1|support|SIP/2002|CONNECT|8|c1b|2\n"
        "2024-03-04 11:02:18|c1|support|SIP/2002|COMPLETEAGENT|8|120|1\n"
    )
    cfg.write_text('[site]\ntimezone = "Europe/Helsinki"\n')
    replay(cli, src, db, "--format", "asterisk", "--config", str(cfg))
    assert query(db, f"SELECT offered_at, {CALL_COLUMNS} FROM calls") == [
        (utc(2024, 3, 4, 9, 0, 10), "c1", "support", "answered", 8, 120, "SIP/2002")
    ]
    # one call answered in 8 s: SL 1, ASA 8, AHT 120
    assert kpi_rows(db) == {("support", utc(2024, 3, 4, 9, 0)): approx((1, 1, 0, 0, 0, 1, 1.0, 8.0, 0.0, 120.0))}


def test_connect_contact_records(cli: Cli, tmp_path: Path) -> None:
    """pipeline_ctrs.jsonl, all UTC, interval 2024-03-05 14:00-14:15:

      contact  queue    enqueued  agent at / dequeued  outcome   wait talk hold wrap handle
      k1       Support  14:00:00  ana 14:00:10         answered   10  200   20   30  250
      k2       Support  14:01:00  dequeued 14:01:04    abandoned   4 (short; CUSTOMER_DISCONNECT)
      k3       Support  14:02:00  dequeued 14:02:50    abandoned  50
      k4       Support  14:03:00  dequeued 14:05:00    exited    120 (CONTACT_FLOW_DISCONNECT)
      k5       Support  14:04:00  ben 14:04:30         answered   30  100    0   20  120 (→ k6)
      k6 (=k5) Billing  14:06:00  cara 14:06:05        answered    5   60   10    0   70 (TRANSFER)
      k7       Support  14:10:00  ana 14:10:15         answered   15   90    0   10  100
      k8 OUTBOUND, k9 INBOUND never queued: not call records.

    Support: offered 6, answered 3, abandoned 2, short 1, exited 1, in SL 2 (k1 10 s,
    k7 15 s), SL 2/(6-1) = 0.4, ASA (10+30+15)/3 = 55/3, abandon rate (2-1)/(6-1) = 0.2,
    AHT (250+120+100)/3 = 470/3, transfer rate 1/3.
    Billing: offered 1, answered 1 in SL, SL 1, ASA 5, abandon rate 0, AHT 70.
    """
    db = tmp_path / "cp.duckdb"
    err = replay(cli, CTRS, db)
    assert "read 7  accepted 7  duplicates 0  dead-lettered 0" in err
    assert "not call records, left out by the adapter: initiation OUTBOUND 1, never queued 1" in err
    assert query(
        db,
        f"SELECT {CALL_COLUMNS}, hold_s, wrap_s, handle_s, transferred FROM calls ORDER BY offered_at",
    ) == [
        ("k1", "Support", "answered", 10, 200, "ana", 20, 30, 250, False),
        ("k2", "Support", "abandoned", 4, None, None, None, None, None, False),
        ("k3", "Support", "abandoned", 50, None, None, None, None, None, False),
        ("k4", "Support", "exited", 120, None, None, None, None, None, False),
        ("k5", "Support", "answered", 30, 100, "ben", 0, 20, 120, True),
        ("k5", "Billing", "answered", 5, 60, "cara", 10, 0, 70, False),
        ("k7", "Support", "answered", 15, 90, "ana", 0, 10, 100, False),
    ]
    assert kpi_rows(db) == {
        ("Support", utc(2024, 3, 5, 14, 0)): approx((6, 3, 2, 1, 1, 2, 0.4, 55 / 3, 0.2, 470 / 3)),
        ("Billing", utc(2024, 3, 5, 14, 0)): approx((1, 1, 0, 0, 0, 1, 1.0, 5.0, 0.0, 70.0)),
    }
    # centre totals: k5 visits two queues but is one call
    assert query(db, "SELECT offered, answered, abandoned, exited FROM kpi_centre_interval") == [(6, 3, 2, 1)]
    before = tables(db)
    assert "read 7  accepted 0  duplicates 7  dead-lettered 0" in replay(cli, CTRS, db)
    assert tables(db) == before


def test_mapped_bank_format_interval(cli: Cli, tmp_path: Path) -> None:
    """bank_interval.tsv through the committed anonymous_bank mapping (auto-detected),
    local times in Asia/Jerusalem (UTC+2 in February 1999): 10:00-10:15 local on
    1999-02-08 is the 08:00-08:15 UTC interval.

      row  queue  outcome  q_start   q_exit    → outcome    wait  talk  agent
      101  PS     AGENT    10:00:05  10:00:17    answered    12   180   DORIT
      102  PS     AGENT    0:00:00   (ser 10:01:07) answered  0    60   (NO_SERVER)
      103  PS     HANG     10:02:05  10:02:08    abandoned    3 (short)
      104  PS     HANG     10:03:10  10:04:10    abandoned   60
      105  PS     AGENT    10:05:00  10:05:40    answered    40   240   AVNI
      106  PS     HANG     0:00:00               not offered (hung up in the VRU)
      107  PS     PHANTOM                        left out
      109  NE     AGENT    10:07:00  10:07:20    answered    20    60   TOVA
      108  PS     AGENT    10:14:50  10:15:02    answered    12    30   DORIT (answered in the
                                                 next interval, counts in the one offered in)

    PS: offered 6, answered 4, abandoned 2, short 1, exited 0, in SL 3 (12, 0, 12),
    SL 3/(6-1) = 0.6, ASA (12+0+40+12)/4 = 16, abandon rate (2-1)/(6-1) = 0.2,
    AHT (180+60+240+30)/4 = 127.5.  NE: 1 answered after 20 s: SL 0, ASA 20, AHT 60.
    """
    db = tmp_path / "cp.duckdb"
    err = replay(cli, BANK_INTERVAL, db)
    assert "read 7  accepted 7  duplicates 0  dead-lettered 0" in err
    assert "not call records, left out by the adapter: PHANTOM 1, not offered 1" in err
    assert query(db, f"SELECT {CALL_COLUMNS} FROM calls ORDER BY offered_at") == [
        ("AA0201-101", "PS", "answered", 12, 180, "DORIT"),
        ("AA0201-102", "PS", "answered", 0, 60, None),
        ("AA0202-103", "PS", "abandoned", 3, None, None),
        ("AA0202-104", "PS", "abandoned", 60, None, None),
        ("AA0203-105", "PS", "answered", 40, 240, "AVNI"),
        ("AA0204-109", "NE", "answered", 20, 60, "TOVA"),
        ("AA0205-108", "PS", "answered", 12, 30, "DORIT"),
    ]
    assert query(db, "SELECT offered_at, answered_at FROM calls WHERE call_id = 'AA0201-101'") == [
        (utc(1999, 2, 8, 8, 0, 5), utc(1999, 2, 8, 8, 0, 17))
    ]
    assert kpi_rows(db) == {
        ("PS", utc(1999, 2, 8, 8, 0)): approx((6, 4, 2, 1, 0, 3, 0.6, 16.0, 0.2, 127.5)),
        ("NE", utc(1999, 2, 8, 8, 0)): approx((1, 1, 0, 0, 0, 0, 0.0, 20.0, 0.0, 60.0)),
    }


def test_mapped_csv_with_own_mapping_takes_the_site_time_zone(cli: Cli, tmp_path: Path) -> None:
    """acd_export.csv with acd_export.toml (--mapping FILE), a mapping without a
    timezone: its naive times are in the site's zone, America/New_York (EST, UTC-5, on
    2024-03-05), so 09:00 local is the 14:00 UTC interval.

      id  result  start     pickup    end       → outcome   wait  talk  agent
      1   OK      09:00:00  09:00:08  09:04:08    answered     8   240   a7
      2   LOST    09:02:00            09:02:30    abandoned   30
      3   OUT     09:03:00            09:06:00    exited     180
      4   OK      09:05:00  09:05:45  09:07:45    answered    45   120   a8

    offered 4, answered 2, abandoned 1 (not short), exited 1, in SL 1, SL 1/4,
    ASA (8+45)/2 = 26.5, abandon rate 1/4, AHT (240+120)/2 = 180.
    """
    db, cfg = tmp_path / "cp.duckdb", tmp_path / "callpulse.toml"
    cfg.write_text('[site]\ntimezone = "America/New_York"\n')
    err = replay(cli, ACD_CSV, db, "--mapping", str(ACD_MAPPING), "--config", str(cfg))
    assert "read 4  accepted 4  duplicates 0  dead-lettered 0" in err
    assert query(db, f"SELECT offered_at, {CALL_COLUMNS} FROM calls ORDER BY call_id") == [
        (utc(2024, 3, 5, 14, 0), "1", "sales", "answered", 8, 240, "a7"),
        (utc(2024, 3, 5, 14, 2), "2", "sales", "abandoned", 30, None, None),
        (utc(2024, 3, 5, 14, 3), "3", "sales", "exited", 180, None, None),
        (utc(2024, 3, 5, 14, 5), "4", "sales", "answered", 45, 120, "a8"),
    ]
    assert kpi_rows(db) == {
        ("sales", utc(2024, 3, 5, 14, 0)): approx((4, 2, 1, 0, 1, 1, 0.25, 26.5, 0.25, 180.0)),
    }


# -- 2. following a live queue_log through a rotation ----------------------------------


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def has_open(pid: int, path: Path) -> bool:
    """Whether process ``pid`` holds ``path`` open (Linux /proc)."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except FileNotFoundError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == str(path):
                return True
        except OSError:
            continue
    return False


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="needs /proc to see the follower's open file")
def test_follow_with_rotation_stores_every_line_once(cli: Cli, tmp_path: Path) -> None:
    lines = QUEUE_LOG.read_text().splitlines(keepends=True)
    first, second, third = lines[:12], lines[12:22], lines[22:]
    log, db = tmp_path / "queue_log", tmp_path / "follow.duckdb"
    log.write_text("".join(first))
    proc = cli.popen("replay", log, "--follow", "--duration", "7", "--db", db, cwd=tmp_path)
    try:
        # the follower has the file open: from now on a rename cannot hide the old file
        wait_for(
            lambda: has_open(proc.pid, log) or proc.poll() is not None,
            60,
            "the follower to open the log",
        )
        assert proc.poll() is None, proc.communicate()
        with log.open("a") as handle:  # appended to the live file
            handle.write("".join(second))
        log.rename(tmp_path / "queue_log.1")  # rotation: rename + a new file
        log.write_text("".join(third[:5]))
        with log.open("a") as handle:  # and appended to the new one
            handle.write("".join(third[5:]))
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    # every line's records exactly once: the same counts as the plain replay (44 / 39 / 5)
    assert "read 44  accepted 39  duplicates 0  dead-lettered 5" in err

    plain = tmp_path / "plain.duckdb"
    replay(cli, QUEUE_LOG, plain)
    assert tables(db) == tables(plain)
    assert query(
        db,
        "SELECT (SELECT count(*) FROM call_events), (SELECT count(*) FROM agent_events), "
        "(SELECT count(*) FROM dead_letters)",
    ) == query(
        plain,
        "SELECT (SELECT count(*) FROM call_events), (SELECT count(*) FROM agent_events), "
        "(SELECT count(*) FROM dead_letters)",
    )
    assert sorted(r for (r,) in query(db, "SELECT reason FROM dead_letters")) == sorted(
        r for (r,) in query(plain, "SELECT reason FROM dead_letters")
    )


# -- 3. the bank month against an independent count ------------------------------------


def test_bank_month_through_replay_equals_an_independent_count(cli: Cli, tmp_path: Path) -> None:
    need(BANK)
    db = tmp_path / "bank.duckdb"
    err = replay(cli, BANK, db)  # --format auto: detected as mapped, committed mapping
    assert "read 31,125  accepted 31,125  duplicates 0  dead-lettered 0" in err
    assert "not call records, left out by the adapter: PHANTOM 278, not offered 1,941" in err

    # The data README's rules, applied here without the adapter: PHANTOM is no call;
    # HANG with q_start 0:00:00 never reached a queue (no call); HANG after queueing is
    # abandoned after q_time; AGENT after queueing is answered after q_time; AGENT with
    # q_start 0:00:00 was answered without waiting.
    raw = pl.read_csv(BANK, separator="\t", infer_schema=False)
    assert raw.height == 33_344
    assert raw.filter(pl.col("outcome") == "PHANTOM").height == 278
    queued = pl.col("q_start") != "0:00:00"
    assert raw.filter((pl.col("outcome") == "HANG") & ~queued).height == 1_941
    calls = (
        raw.filter(pl.col("outcome") != "PHANTOM")
        .filter((pl.col("outcome") == "AGENT") | queued)
        .select(
            queue=pl.col("type"),
            outcome=pl.when(pl.col("outcome") == "AGENT").then(pl.lit("answered")).otherwise(pl.lit("abandoned")),
            wait=pl.when(queued).then(pl.col("q_time").cast(pl.Int64)).otherwise(0),
        )
    )
    by_outcome = {o: n for o, n in calls.group_by("outcome").len().iter_rows()}
    assert by_outcome == {"answered": 27_162, "abandoned": 3_963}  # the README's counts
    assert dict(query(db, "SELECT outcome, count(*) FROM calls GROUP BY ALL")) == by_outcome

    want = {
        (q, o): (n, total, mean)
        for q, o, n, total, mean in calls.group_by("queue", "outcome")
        .agg(pl.len(), pl.col("wait").sum().alias("total"), pl.col("wait").mean().alias("mean"))
        .iter_rows()
    }
    got = {
        (q, o): (n, total, mean)
        for q, o, n, total, mean in query(
            db, "SELECT queue, outcome, count(*), sum(wait_s), avg(wait_s) FROM calls GROUP BY ALL"
        )
    }
    assert got.keys() == want.keys()
    for key, (n, total, mean) in want.items():
        assert got[key] == (n, total, pytest.approx(mean)), key
    per_queue = {
        q: (n, total, mean)
        for q, n, total, mean in calls.group_by("queue")
        .agg(pl.len(), pl.col("wait").sum().alias("t"), pl.col("wait").mean().alias("m"))
        .iter_rows()
    }
    got_queue = {
        q: (n, t, m)
        for q, n, t, m in query(db, "SELECT queue, count(*), sum(wait_s), avg(wait_s) FROM calls GROUP BY ALL")
    }
    assert got_queue == {q: (n, t, pytest.approx(m)) for q, (n, t, m) in per_queue.items()}

    # the two waits that cross midnight: 23:59:29 → 0:00:26 and 23:59:26 → 0:00:27
    assert query(
        db,
        "SELECT call_id, outcome, wait_s FROM calls WHERE call_id IN ('AA0105-35608', 'AA0215-13278') ORDER BY 1",
    ) == [("AA0105-35608", "abandoned", 57), ("AA0215-13278", "abandoned", 61)]
    # the materialised interval KPIs add up to the same counts per queue, and
    # ASA x answered summed over the intervals to the answered calls' total wait
    rows = query(
        db,
        "SELECT queue, sum(offered), sum(answered), sum(abandoned), sum(exited), "
        "sum(asa_s * answered) FROM kpi_queue_interval GROUP BY ALL",
    )
    assert {q for q, *_ in rows} == set(per_queue)
    for q, offered, answered, abandoned, exited, answered_waits in rows:
        n_answered, total_answered_wait, _ = want.get((q, "answered"), (0, 0, None))
        n_abandoned = want.get((q, "abandoned"), (0, 0, None))[0]
        assert (offered, answered, abandoned, exited) == (
            per_queue[q][0],
            n_answered,
            n_abandoned,
            0,
        )
        assert answered_waits == pytest.approx(total_answered_wait)
