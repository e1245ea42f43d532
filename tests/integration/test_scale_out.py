"""Three `callpulse worker`s in one consumer group with `[kafka] route_by_queue` on a real
broker: one is SIGKILLed mid-run, its partitions move to the others, and the union of
what the workers stored (each queue from the database holding the latest claim on its
calls partition) equals `callpulse replay` of the same records into one database; so do
the analysts' views over the shared Parquet store the workers export to.

Every worker has its own database ({worker} in --db), /metrics port and log; the test
has its own topics and group. Conditions are read from the workers' /metrics (DuckDB
allows no reader beside a writer process); the databases are read once they stopped.
"""

from __future__ import annotations

import os
import signal
import uuid
from pathlib import Path
from typing import Any

import duckdb
import pytest

from devtools.kafka import KafkaBroker, create_topic
from devtools.kafka import end_offsets as broker_end_offsets
from devtools.procs import ManagedProcess, free_port, tail, wait_until
from metrics.export import names
from pipeline.core.config import KafkaSettings
from pipeline.core.ownership import key_partition
from pipeline.ingest.sources.kafka import produce_lines, source_name
from pipeline.ingest.sources.routing import BY_QUEUE, routed_topic_names
from pipeline.ingest.sources.simulator import QueueSpec, SimConfig, simulate, write_jsonl
from pipeline.ops import parquet_store
from tests.support.cli import Cli
from tests.support.scrape import fetch, samples

pytestmark = pytest.mark.kafka

PARTITIONS = 3
QUEUE_COLUMNS = (
    "queue, interval_start, interval_s, offered, answered, abandoned, short_abandoned, exited, answered_in_sl, "
    "service_level, asa_s, abandon_rate, aht_s, transfer_rate, max_wait_s, waiting, abandoned_in_sl, handled, "
    "transferred"
)
# repeat_contact / repeat_rate / fcr are left out: a caller's next call may reach a queue of
# another worker (docs/kafka.md, limits).
CALL_COLUMNS = (
    "call_id, queue, caller_key, agent_id, offered_at, answered_at, abandoned_at, exited_at, ended_at, "
    "outcome, wait_s, talk_s, hold_s, wrap_s, handle_s, transferred, case_id, category, resolved"
)


def queues_on_every_partition() -> tuple[QueueSpec, ...]:
    """Five small simulated queues whose names put at least one on every partition."""
    chosen: list[str] = []
    for i in range(500):
        name = f"q{i}"
        held = {key_partition(q, PARTITIONS) for q in chosen}
        if key_partition(name, PARTITIONS) not in held or len(held) == PARTITIONS:
            chosen.append(name)
        if len(chosen) == 5:
            break
    return tuple(QueueSpec(q, 500 + 150 * i, 8 + 2 * i, 240, 30, 90) for i, q in enumerate(chosen))


def end_offsets(bootstrap: str, topics: list[str]) -> dict[tuple[str, int], int]:
    """Each partition's next offset, asked of the broker (a consumer outside every group)."""
    return broker_end_offsets(bootstrap, dict.fromkeys(topics, PARTITIONS))


class Worker:
    """One `callpulse worker` process with its own config, port and log."""

    def __init__(self, cli: Cli, tmp: Path, s: KafkaSettings, worker_id: str) -> None:
        self.id = worker_id
        self.port = free_port()
        home = tmp / worker_id
        home.mkdir()
        (home / "callpulse.toml").write_text(
            f'[kafka]\nbatch_size = 400\nbatch_within = "200ms"\nroute_by_queue = true\n[exporter]\nport = {self.port}\n'
            f'[analyst]\nparquet = "{tmp / "store"}"\nparquet_every = "1s"\n'
        )
        self.db = tmp / f"{worker_id}.duckdb"
        argv = cli.argv(
            "worker", "--config", home / "callpulse.toml", "--db", tmp / "{worker}.duckdb", "--worker-id", worker_id,
            "--bootstrap", s.bootstrap, "--group", s.group, "--topic-prefix", s.topic_prefix,
            "--session-timeout", "6",
        )  # fmt: skip
        self.proc = ManagedProcess(
            argv, tmp / f"{worker_id}.log", name=worker_id, cwd=home, env=cli.env, stop_timeout=30
        )

    def offsets(self) -> dict[tuple[str, int], int]:
        """The stored offset of each partition it holds now, from its /metrics ({} before it serves)."""
        self.proc.check_alive()
        try:
            text, _ = fetch(f"http://127.0.0.1:{self.port}/metrics")
        except OSError:
            return {}
        found = samples(text, names.KAFKA_STORED_OFFSET.name)
        return {(dict(k)["topic"], int(dict(k)["partition"])): int(v) for k, v in found.items()}

    def queues(self) -> set[str]:
        text, _ = fetch(f"http://127.0.0.1:{self.port}/metrics")
        return {dict(k)["queue"] for k in samples(text, names.CALLS_WAITING.name)}


# How far a database got in one queue partition: (calls, agents_by_queue) messages stored, its claim's generation.
PROGRESS = """
SELECT coalesce((SELECT "offset" + 1 FROM source_offsets WHERE source = $calls AND partition = $p), 0),
       coalesce((SELECT "offset" + 1 FROM source_offsets WHERE source = $by_queue AND partition = $p), 0),
       coalesce((SELECT generation FROM worker_partitions WHERE source = $calls AND partition = $p), -1)
"""


def read(db: Path, query: str, **params: Any) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(query, params).fetchall()
    finally:
        con.close()


def test_three_workers_one_killed_union_equals_replay(cli: Cli, kafka_broker: KafkaBroker, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:8]
    s = KafkaSettings(bootstrap=kafka_broker.bootstrap, group=f"g-{tag}", topic_prefix=f"t-{tag}.", route_by_queue=True)
    topics = routed_topic_names(s)
    for topic in topics.values():
        create_topic(s.bootstrap, topic, PARTITIONS)
    specs = queues_on_every_partition()
    day = list(simulate(SimConfig(seed=5, scale=0.5, queues=specs)))
    records = day[: len(day) * 3 // 5]  # up to the afternoon: agents are logged in at the end
    source = tmp_path / "day.jsonl"
    write_jsonl(records, source)
    lines = source.read_bytes().splitlines()
    third = len(lines) // 3
    produce_lines(lines[:third], s)

    workers = [Worker(cli, tmp_path, s, f"w{i}") for i in range(3)]
    victim, survivors = workers[0], workers[1:]
    try:
        victim.proc.start()
        # the first worker holds every partition until the others join: it loses some then
        wait_until(lambda: sum(victim.offsets().values()) > 0, 90, "w0 to store a batch", interval=0.3)
        # /metrics' counters (the offsets) are published before the snapshot (the queues)
        wait_until(lambda: victim.queues() == {q.name for q in specs}, 30, "w0 to show every queue", interval=0.3)
        alone = victim.queues()
        assert alone == {q.name for q in specs}, alone
        for w in survivors:
            w.proc.start()
        wait_until(
            lambda: all(any(t == topics["calls"] for t, _ in w.offsets()) for w in workers),
            90,
            "each worker to hold and store a calls partition",
            interval=0.3,
        )
        produce_lines(lines[third : 2 * third], s)
        before = sum(victim.offsets().values())
        wait_until(lambda: sum(victim.offsets().values()) > before, 60, "w0's stored offsets to advance", interval=0.2)
        assert victim.queues() < alone  # a queue it lost is no longer exported
        assert victim.proc.proc is not None
        os.killpg(victim.proc.proc.pid, signal.SIGKILL)
        victim.proc.proc.wait(timeout=10)
        produce_lines(lines[2 * third :], s)

        ends: dict[tuple[str, int], int] = {}

        def consumed() -> bool:
            # all input and every forward stored; the agents topic first (its forwards come before it is stored)
            held: dict[tuple[str, int], int] = {}
            for w in survivors:
                held.update(w.offsets())
            ends.update(end_offsets(s.bootstrap, list(topics.values())))
            return all(held.get(tp, -1) == end - 1 for tp, end in ends.items() if end > 0)

        wait_until(consumed, 90, "the survivors to store every message", interval=0.5)

        def split() -> bool:  # the snapshots (the queues) follow the counters (the offsets)
            q0, q1 = (w.queues() for w in survivors)
            return not (q0 & q1) and q0 | q1 == {q.name for q in specs}

        wait_until(split, 30, "the survivors to export every queue, each once", interval=0.3)
        exported = [w.queues() for w in survivors]
        assert not (exported[0] & exported[1]) and exported[0] | exported[1] == {q.name for q in specs}, exported
        # Both at once: one leaving first would hand its partitions to the other, which would
        # route its agents from the start again (duplicates on agents_by_queue, harmless).
        for w in survivors:
            assert w.proc.proc is not None
            os.killpg(w.proc.proc.pid, signal.SIGTERM)
        for w in survivors:  # a second SIGTERM (stop()) while one shuts down would kill it
            proc = w.proc.proc
            assert proc is not None and proc.wait(timeout=60) == 0, tail(w.proc.log_path)
    finally:
        for w in workers:
            w.proc.stop()

    expected = tmp_path / "replay.duckdb"
    calls, by_queue = source_name(topics["calls"]), source_name(topics[BY_QUEUE])
    cli.ok("replay", source, "--db", expected, cwd=tmp_path)
    # Each queue from the database that stored the most of its partitions (calls and
    # agents_by_queue); on a tie (the same messages) the latest claim (group generation).
    # (ends: when every message was stored; a worker stopping after the other may have routed
    # its new partitions' agents again since)
    owner: dict[int, str] = {}
    for p in range(PARTITIONS):
        progress = {w.id: read(w.db, PROGRESS, calls=calls, by_queue=by_queue, p=p)[0] for w in workers}
        owner[p] = max(progress, key=lambda wid: (progress[wid][0] + progress[wid][1], progress[wid][2]))
        done = progress[owner[p]]
        assert done[0] >= ends[(topics["calls"], p)] and done[1] >= ends[(topics[BY_QUEUE], p)], (progress, ends)
    assert victim.id not in owner.values(), owner  # what it stored, others stored further since
    dbs = {w.id: w.db for w in workers}

    def union(query: str, queue_at: int) -> list[tuple[Any, ...]]:
        return sorted(
            row
            for wid, db in dbs.items()
            for row in read(db, query)
            if owner[key_partition(row[queue_at], PARTITIONS)] == wid
        )

    for query, queue_at in (
        (f"SELECT {QUEUE_COLUMNS} FROM kpi_queue_interval", 0),
        (f"SELECT {CALL_COLUMNS} FROM calls", 1),
        ("SELECT queue, state, reason, count(*) FROM (SELECT unnest(coalesce(queues, [''])) AS queue, state, "
         "coalesce(reason, '') AS reason FROM agent_current WHERE state <> 'logout') GROUP BY ALL", 0),
    ):  # fmt: skip
        got, want = union(query, queue_at), sorted(read(expected, query))
        assert want and got == want, (query, len(got), len(want))

    # The shared Parquet store (each worker exports the finished rows of the queues it owns
    # at the time): every row in the analysts' views is the replay's row, and every replay
    # row its queue's final owner had finished is there.
    views = parquet_store.open_views(tmp_path / "store")
    frontier = {wid: read(db, "SELECT max(frontier) FROM parquet_exports")[0][0] for wid, db in dbs.items()}
    for query, done, queue_at in (
        (f"SELECT {CALL_COLUMNS} FROM calls", "coalesce(ended_at, abandoned_at, exited_at)", 1),
        (f"SELECT {QUEUE_COLUMNS} FROM kpi_queue_interval", "interval_start + to_seconds(interval_s)", 0),
    ):
        shown = sorted(views.execute(query).fetchall())
        want = sorted(read(expected, query))
        assert shown and set(shown) <= set(want), (query, len(set(shown) - set(want)))
        finished = read(expected, f"SELECT {done} AS t, * FROM ({query}) WHERE {done} IS NOT NULL")
        due = {r[1:] for r in finished if r[0] <= frontier[owner[key_partition(r[1 + queue_at], PARTITIONS)]]}
        assert due and due <= set(shown), (query, len(due - set(shown)))
    views.close()
