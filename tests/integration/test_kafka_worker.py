"""`callpulse worker` against a real Kafka broker: same KPIs as a replay, crash safety
(SIGKILL at random points), malformed messages, a broker outage, an Asterisk queue_log
through its own topic.

Every test has its own topics, consumer group and DuckDB file; the worker runs as a
subprocess (`python -m pipeline.cli worker`) and the database is read only while no
worker holds it (DuckDB allows one writer process).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import signal
import tempfile
import time
import uuid
from datetime import time as dt_time
from pathlib import Path
from typing import Any

import duckdb
import pytest

from devtools.kafka import KafkaBroker, create_topic
from devtools.procs import ManagedProcess, tail, wait_until
from pipeline.core.config import KafkaSettings
from pipeline.ingest.sources.kafka import produce_lines, topic_names
from pipeline.ingest.sources.simulator import SimConfig, simulate, write_jsonl
from tests.support.cli import Cli
from tests.support.mixed import mixed_records

pytestmark = pytest.mark.kafka

KPI_TABLES = [
    "SELECT * FROM kpi_queue_interval ORDER BY ALL",
    "SELECT * FROM kpi_agent_interval ORDER BY ALL",
    "SELECT * FROM calls ORDER BY call_id, queue",
    "SELECT * FROM cases ORDER BY ALL",
]
MIXED_TABLES = [
    "SELECT * FROM kpi_queue_interval ORDER BY ALL",
    "SELECT * FROM kpi_agent_interval ORDER BY ALL",
    "SELECT * FROM calls ORDER BY call_id, queue",
    "SELECT * FROM cases ORDER BY ALL",
    'SELECT queue, kpi, "window", target, value, worst_value, opened_at, closed_at FROM breaches ORDER BY ALL',
]
COUNTS = (
    "SELECT (SELECT count(*) FROM call_events), (SELECT count(*) FROM agent_events), "
    "(SELECT count(*) FROM qa_evals), (SELECT count(*) FROM dead_letters)"
)


@pytest.fixture(scope="module")
def sim_day(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sim") / "day.jsonl"
    write_jsonl(simulate(SimConfig(seed=7, scale=0.2)), path)
    return path


def settings_for(broker: KafkaBroker, partitions: int = 3) -> KafkaSettings:
    """Fresh topics (created here) and a fresh consumer group."""
    tag = uuid.uuid4().hex[:8]
    s = KafkaSettings(bootstrap=broker.bootstrap, group=f"g-{tag}", topic_prefix=f"t-{tag}.")
    for kind, topic in topic_names(s).items():
        create_topic(broker.bootstrap, topic, partitions if kind != "qa" else 2)
    return s


def worker(cli: Cli, tmp: Path, db: Path, s: KafkaSettings, *extra: str, name: str = "worker") -> ManagedProcess:
    (tmp / "callpulse.toml").write_text('[kafka]\nbatch_size = 500\nbatch_within = "200ms"\n')
    argv = cli.argv(
        "worker",
        "--config",
        str(tmp / "callpulse.toml"),
        "--db",
        str(db),
        "--bootstrap",
        s.bootstrap,
        "--group",
        s.group,
        "--topic-prefix",
        s.topic_prefix,
        "--no-serve",
        "--session-timeout",
        "6",
        *extra,
    )
    return ManagedProcess(argv, tmp / f"{name}.log", name=name, cwd=tmp, env=cli.env, stop_timeout=30).start()


def stored_progress(proc: ManagedProcess) -> int:
    """The last 'progress: N messages stored' the worker printed (0 if none yet)."""
    found = re.findall(r"progress: (\d+) messages stored", tail(proc.log_path, 400))
    return int(found[-1]) if found else 0


def replay(cli: Cli, tmp: Path, src: Path) -> Path:
    db = tmp / "replay.duckdb"
    cli.ok("replay", src, "--db", db, cwd=tmp)
    return db


def read(db: Path, sql: str | list[str]) -> Any:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return [con.execute(q).fetchall() for q in sql] if isinstance(sql, list) else con.execute(sql).fetchall()
    finally:
        con.close()


def produce_file(s: KafkaSettings, path: Path, lines: slice = slice(None)) -> int:
    return produce_lines(path.read_bytes().splitlines()[lines], s)


def finish(proc: ManagedProcess, expected: int, timeout: float = 120) -> None:
    """Wait until this worker stored ``expected`` fresh messages, then stop it with SIGTERM:
    it must exit 0. DuckDB is the truth, not the group's committed offset in Kafka, which
    faust may leave behind after a seek (faust-streaming#606)."""
    wait_until(
        lambda: stored_progress(proc) >= expected,
        timeout,
        f"the worker to store {expected} messages",
        interval=0.5,
        on_poll=proc.check_alive,
    )
    assert proc.stop() == 0, tail(proc.log_path)


def stored_messages(db: Path) -> int:
    """Messages DuckDB holds, from its offsets (each test's topics start at offset 0)."""
    return int(read(db, 'SELECT coalesce(sum("offset" + 1), 0) FROM source_offsets')[0][0]) if db.exists() else 0


def test_simulated_day_through_kafka_equals_replay(
    cli: Cli, kafka_broker: KafkaBroker, sim_day: Path, tmp_path: Path
) -> None:
    s = settings_for(kafka_broker)
    # The same day, sent by `callpulse simulate --to kafka` (same seed and scale as sim_day).
    out = cli.ok(
        "simulate", "--seed", "7", "--scale", "0.2", "--to", "kafka",
        "--bootstrap", s.bootstrap, "--topic-prefix", s.topic_prefix, cwd=tmp_path,
    )  # fmt: skip
    n = len(sim_day.read_bytes().splitlines())
    # status lines go to stderr (kafka_cli's console), like every command's
    assert f"produced {n:,} messages" in out.stderr.replace("\n", " "), out.stderr
    proc = worker(cli, tmp_path, tmp_path / "w.duckdb", s)
    try:
        finish(proc, n)
    finally:
        proc.stop()
    assert f"progress: {n} messages" in tail(proc.log_path, 400) or "worker done: messages" in tail(proc.log_path)
    expected = replay(cli, tmp_path, sim_day)
    assert read(tmp_path / "w.duckdb", COUNTS) == read(expected, COUNTS)
    assert read(tmp_path / "w.duckdb", KPI_TABLES) == read(expected, KPI_TABLES)
    offsets = read(tmp_path / "w.duckdb", 'SELECT sum("offset" + 1) FROM source_offsets')[0][0]
    assert offsets == n  # every partition's stored offset is its last message


def kill_runs(
    cli: Cli, s: KafkaSettings, tmp: Path, db: Path, lines: list[bytes], kills: int, rng: random.Random
) -> None:
    """Send ``lines`` in ``kills + 1`` parts; after each of the first ``kills`` a worker run
    is SIGKILLed at a random moment once it stored something; a last run stores the rest
    and stops cleanly."""
    chunk = len(lines) // (kills + 1)
    previous = (0, 0, 0, 0)
    pids: list[int] = []  # of every worker run
    for i in range(kills):
        produce_lines(lines[i * chunk : (i + 1) * chunk], s)
        proc = worker(cli, tmp, db, s, name=f"worker{i}")
        assert proc.proc is not None
        pids.append(proc.proc.pid)
        try:
            # Wait until this run really stores something, then kill it at a random moment.
            wait_until(lambda p=proc: stored_progress(p) > 0, 90, f"run {i} to store a batch", on_poll=proc.check_alive)
            time.sleep(rng.uniform(0.0, 0.6))
            assert proc.proc is not None
            os.killpg(proc.proc.pid, signal.SIGKILL)
            proc.proc.wait(timeout=10)
            assert proc.proc.returncode == -signal.SIGKILL
        finally:
            proc.stop()
        now = read(db, COUNTS)[0]
        assert now >= previous and now != previous, f"run {i} stored nothing: {now}"
        previous = now
    produce_lines(lines[kills * chunk :], s)
    remaining = len(lines) - stored_messages(db)
    proc = worker(cli, tmp, db, s, name="final")
    assert proc.proc is not None
    pids.append(proc.proc.pid)
    try:
        finish(proc, remaining)
    finally:
        proc.stop()
    # A killed run cannot remove faust's data folder (named by its pid); the runs after it did.
    left = [p.name for pid in pids for p in Path(tempfile.gettempdir()).glob(f"callpulse-faust-{pid}-*")]
    assert not left, left


def test_mixed_input_with_sigkills_equals_replay_bit_for_bit(
    cli: Cli, kafka_broker: KafkaBroker, tmp_path: Path
) -> None:
    """Live events and CDRs of the same calls, CDR-only calls, re-deliveries, transfers
    (one call's events on two partitions), agents on several queues, three time zones,
    waits on the thresholds, sub-second times; four SIGKILLs at random moments: every
    record is stored exactly once and the tables, breaches included, are exactly (bit for
    bit) those of `callpulse replay`."""
    s = settings_for(kafka_broker)
    src = tmp_path / "mixed.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in mixed_records(seed=8, scale=0.15, close=dt_time(10, 0))))
    db = tmp_path / "w.duckdb"
    lines = src.read_bytes().splitlines()
    kill_runs(cli, s, tmp_path, db, lines, kills=4, rng=random.Random(20261205))
    expected = replay(cli, tmp_path, src)
    assert read(expected, "SELECT count(*) FROM breaches")[0][0] > 0  # something to compare
    assert read(expected, "SELECT count(*) FROM dead_letters")[0][0] == 0
    assert read(db, COUNTS) == read(expected, COUNTS)
    for sql in MIXED_TABLES:
        assert read(db, sql) == read(expected, sql), sql
    assert read(db, 'SELECT sum("offset" + 1) FROM source_offsets')[0][0] == len(lines)


async def _send_raw(s: KafkaSettings, topic: str, values: list[bytes | None]) -> list[int]:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=s.bootstrap, max_request_size=8 * 1_048_576)
    await producer.start()
    try:
        return [(await producer.send_and_wait(topic, v, key=b"k", partition=0)).offset for v in values]
    finally:
        await producer.stop()


def test_malformed_messages_are_dead_lettered_and_consumption_goes_on(
    cli: Cli, kafka_broker: KafkaBroker, tmp_path: Path
) -> None:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    tag = uuid.uuid4().hex[:8]
    s = KafkaSettings(bootstrap=kafka_broker.bootstrap, group=f"g-{tag}", topic_prefix=f"t-{tag}.")
    topics = topic_names(s)

    async def make_topics() -> None:  # the calls topic accepts the ~2 MB message
        admin = AIOKafkaAdminClient(bootstrap_servers=s.bootstrap)
        await admin.start()
        try:
            await admin.create_topics(
                [NewTopic(t, 1, 1, topic_configs={"max.message.bytes": "8388608"}) for t in topics.values()]
            )
        finally:
            await admin.close()

    asyncio.run(make_topics())

    def call(i: int, **extra: Any) -> bytes:
        return json.dumps(
            {
                "type": "call",
                "event": "offered",
                "call_id": f"k{i}",
                "queue": "billing",
                "at": f"2026-03-02T09:{i:02d}:00Z",
                **extra,
            }
        ).encode()

    bad: list[tuple[bytes | None, str]] = [
        (b"this is not json", "malformed JSON"),
        (
            b'{"type": "call", "event": "offered", "call_id": "w1", "queue": "billing", "at": "yesterday"}',
            "bad timestamp",
        ),
        (
            b'{"type": "call", "event": "ended", "call_id": "w2", "queue": "q", "at": "2026-03-02T09:00:00Z", '
            b'"talk_s": "long"}',
            "not a number: talk_s",
        ),
        (b"", "empty message"),
        (None, "empty message"),
        (b'{"type": "call", "note": "' + b"x" * 2_000_000 + b'"}', "message too large"),
        (b"[1, 2, 3]", "not a JSON object"),
    ]
    values: list[bytes | None] = [call(0)]
    for j, (value, _) in enumerate(bad):
        values += [value, call(j + 1)]
    values += [call(i) for i in range(20, 30)]
    offsets = asyncio.run(_send_raw(s, topics["calls"], values))
    proc = worker(cli, tmp_path, tmp_path / "w.duckdb", s, "--max-events", str(len(values)))
    try:
        assert proc.proc is not None
        assert proc.proc.wait(timeout=120) == 0, tail(proc.log_path)
    finally:
        proc.stop()
    dead = dict(read(tmp_path / "w.duckdb", "SELECT position, reason FROM dead_letters"))
    for (_, reason), offset in zip(bad, offsets[1 : 2 * len(bad) : 2], strict=True):
        pos = f"{topics['calls']}:0:{offset}"
        assert pos in dead and dead[pos].startswith(reason), (pos, dead)
    assert len(dead) == len(bad)
    good = len(values) - len(bad)
    assert read(tmp_path / "w.duckdb", "SELECT count(*) FROM call_events")[0][0] == good
    assert max(len(r[0] or "") for r in read(tmp_path / "w.duckdb", "SELECT raw FROM dead_letters")) < 20_000
    # Every message was on the broker before the worker fetched: the stored offset is the last one
    # and the high watermark it knew is one past it (lag 0), stored with it.
    stored = read(tmp_path / "w.duckdb", 'SELECT "offset", high_watermark FROM source_offsets')
    assert stored == [(offsets[-1], offsets[-1] + 1)]


def test_broker_outage_of_30s_loses_nothing(
    cli: Cli, own_kafka_broker: KafkaBroker, sim_day: Path, tmp_path: Path
) -> None:
    lines = sim_day.read_bytes().splitlines()
    half = len(lines) // 2
    s = settings_for(own_kafka_broker)
    produce_lines(lines[:half], s)
    proc = worker(cli, tmp_path, tmp_path / "w.duckdb", s)
    try:
        wait_until(
            lambda: stored_progress(proc) >= half,
            120,
            "the first half to be stored",
            interval=0.5,
            on_poll=proc.check_alive,
        )
        own_kafka_broker.stop_process()
        time.sleep(30)  # the outage itself (the worker must ride it out)
        proc.check_alive()
        own_kafka_broker.restart_process()
        produce_lines(lines[half:], s)
        finish(proc, len(lines), timeout=180)
    finally:
        proc.stop()
    expected = replay(cli, tmp_path, sim_day)
    db = tmp_path / "w.duckdb"
    assert read(db, COUNTS) == read(expected, COUNTS)
    assert read(db, KPI_TABLES) == read(expected, KPI_TABLES)


QUEUE_LOG = Path(__file__).resolve().parents[1] / "fixtures" / "adapters" / "pipeline_queue_log.txt"
# Positions differ by design (line numbers against topic:partition:offset): rows without them.
QUEUE_LOG_TABLES = [
    "SELECT * FROM calls ORDER BY call_id, queue",
    "SELECT * FROM kpi_queue_interval ORDER BY ALL",
    "SELECT * FROM kpi_agent_interval ORDER BY ALL",
    "SELECT * EXCLUDE (queues) FROM agent_states ORDER BY ALL",
    "SELECT reason, raw FROM dead_letters ORDER BY ALL",
    "SELECT count(*) FROM call_events",
    "SELECT count(*) FROM agent_events",
]


def produce_queue_log_cli(cli: Cli, tmp: Path, s: KafkaSettings, path: Path, server: str) -> str:
    out = cli.ok(
        "produce", "--queue-log", path, "--server", server,
        "--bootstrap", s.bootstrap, "--topic-prefix", s.topic_prefix, cwd=tmp,
    )  # fmt: skip
    return (out.stdout + out.stderr).replace("\n", " ")


def test_queue_log_topic_equals_replay_of_the_file_across_a_sigkill(
    cli: Cli, kafka_broker: KafkaBroker, tmp_path: Path
) -> None:
    """The adapters' queue_log fixture through `produce --queue-log` and the worker, killed
    (SIGKILL) once half-way with calls in progress, equals `replay --format asterisk`."""
    s = settings_for(kafka_broker)
    lines = QUEUE_LOG.read_bytes().splitlines(keepends=True)
    cut = len(lines) // 2  # after the TRANSFER: calls D, E, F are still open
    first, second = tmp_path / "queue_log.1", tmp_path / "queue_log"
    first.write_bytes(b"".join(lines[:cut]))
    second.write_bytes(b"".join(lines[cut:]))
    db = tmp_path / "w.duckdb"

    assert f"produced {cut} messages" in produce_queue_log_cli(cli, tmp_path, s, first, "pbx-a")
    proc = worker(cli, tmp_path, db, s, name="worker-killed")
    try:
        wait_until(lambda: stored_progress(proc) >= cut, 90, "the first half to be stored", on_poll=proc.check_alive)
        assert proc.proc is not None
        os.killpg(proc.proc.pid, signal.SIGKILL)
        proc.proc.wait(timeout=10)
    finally:
        proc.stop()
    assert stored_messages(db) == cut

    assert f"produced {len(lines) - cut} messages" in produce_queue_log_cli(cli, tmp_path, s, second, "pbx-a")
    proc = worker(cli, tmp_path, db, s, name="worker-restarted")
    try:
        finish(proc, len(lines) - cut)
    finally:
        proc.stop()

    expected = tmp_path / "replay.duckdb"
    cli.ok("replay", QUEUE_LOG, "--format", "asterisk", "--db", expected, cwd=tmp_path)
    assert read(db, QUEUE_LOG_TABLES) == read(expected, QUEUE_LOG_TABLES)
    assert read(db, "SELECT count(*) FROM dead_letters")[0][0] == 5
    # One server's lines are one partition's, in the log's order; every message stored once.
    topic = topic_names(s)["queue_log"]
    offsets = read(db, 'SELECT source, "offset" FROM source_offsets')
    assert len(offsets) == 1 and offsets[0] == (f"kafka:{topic}", len(lines) - 1)
    positions = [p for (p,) in read(db, "SELECT position FROM dead_letters")]
    assert all(re.fullmatch(re.escape(topic) + r":\d+:\d+", p) for p in positions), positions
