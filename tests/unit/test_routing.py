"""Routing between workers sharing the queues (route_by_queue) without a broker: the
partitioner against Kafka's own test vectors, the agent router's fan-out worked out by
hand, the QA broadcast, ownership in the exports, and three in-process workers whose
union equals one engine fed everything."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from metrics.export import names
from metrics.export.collector import ExportState, Health, KpiCollector, PartitionOffset
from metrics.kpi.snapshot import KpiSnapshot, QueueKpis, QueueSnapshot, QueueTargets, owned_only
from pipeline.core import sqlfiles
from pipeline.core.config import KafkaSettings
from pipeline.core.engine import Engine
from pipeline.core.ownership import EVERYTHING, NOTHING, Ownership, key_partition
from pipeline.core.records import AgentMemory
from pipeline.ingest.sources.kafka import Message
from pipeline.ingest.sources.routing import (
    BY_QUEUE,
    NO_QUEUE,
    QA_ALL,
    AgentRouter,
    Forward,
    agent_fields,
    broadcast,
    routed_topic_names,
)
from pipeline.ingest.sources.simulator import QueueSpec, SimConfig, simulate
from pipeline.ingest.worker import OffsetSink
from tests.helpers import engine
from tests.support.scrape import value

AGENTS = "p.agents"


def agent(state: str, at: str, queues: list[str] | None = None, agent_id: str = "a1") -> bytes:
    record: dict[str, Any] = {"type": "agent", "agent_id": agent_id, "state": state, "at": f"2026-03-02T09:{at}Z"}
    if queues is not None:
        record["queues"] = queues
    return json.dumps(record).encode()


def msgs(values: Iterable[bytes | None], topic: str = AGENTS, partition: int = 0, start: int = 0) -> list[Message]:
    return [Message(topic, partition, start + i, v) for i, v in enumerate(values)]


def keys(forwards: list[Forward]) -> list[list[str]]:
    """The queues each message went to, message by message (forwards keep message order)."""
    out: list[list[str]] = []
    last: bytes | None = None
    for f in forwards:
        if f.value is not last:
            out.append([])
            last = f.value
        out[-1].append((f.key or b"").decode())
    return out


# Apache Kafka's clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java (murmur2)
@pytest.mark.parametrize(
    ("key", "java_hash"),
    [("21", -973932308), ("foobar", -790332482), ("a-little-bit-long-string", -985981536), ("abc", 479470107)],
)
def test_key_partition_is_kafkas_default_partitioner(key: str, java_hash: int) -> None:
    for n in (1, 3, 7, 12):
        assert key_partition(key, n) == (java_hash & 0x7FFFFFFF) % n


def test_agent_events_go_to_the_queues_before_and_the_ones_reported() -> None:
    router = AgentRouter()
    events = [
        agent("ready", "00:00"),  # no queue known yet
        agent("login", "01:00", ["billing", "sales"]),
        agent("busy", "02:00"),
        agent("login", "03:00", ["tech", "sales"]),  # moved: billing must see it leave
        agent("ready", "04:00"),
        agent("logout", "05:00"),
        b"not json",
        json.dumps({"type": "qa", "agent_id": "a1"}).encode(),  # not an agent event
    ]
    forwards, memory = router.forward("p.agents_by_queue", msgs(events), {})
    assert keys(forwards) == [
        [NO_QUEUE],
        ["billing", "sales"],
        ["billing", "sales"],
        ["billing", "sales", "tech"],
        ["sales", "tech"],
        ["sales", "tech"],
    ]
    assert {f.topic for f in forwards} == {"p.agents_by_queue"} and not any(f.everywhere for f in forwards)
    assert [f.value for f in forwards[:1]] == [events[0]]  # the value as consumed, byte for byte
    assert [(m.source, m.partition, m.agents) for m in memory] == [
        ("kafka:p.agents", 0, (AgentMemory("a1", ("sales", "tech")),))
    ]


def test_membership_continues_from_duckdb_when_the_partition_was_elsewhere() -> None:
    saved = {("kafka:p.agents", 0): (AgentMemory("a1", ("billing",)), AgentMemory("a2", ("sales",)))}
    router = AgentRouter(recall=lambda source, partition: saved.get((source, partition), ()))
    first, _ = router.forward("t", msgs([agent("ready", "00:00")], start=0), {})
    assert keys(first) == [[NO_QUEUE]]  # nothing stored for the partition: nothing recalled
    # another worker stored offsets 1..9 meanwhile: this router's memory is stale, DuckDB's is not
    later, memory = router.forward(
        "t", msgs([agent("busy", "10:00"), agent("ready", "11:00", agent_id="a2")], start=10), {(AGENTS, 0): 9}
    )
    assert keys(later) == [["billing"], ["sales"]]
    assert memory[0].agents == (AgentMemory("a1", ("billing",)), AgentMemory("a2", ("sales",)))


def test_agent_fields() -> None:
    assert agent_fields(agent("login", "00:00", ["b", "a", "b"])) == ("a1", ("a", "b"))
    assert agent_fields(agent("ready", "00:00")) == ("a1", None)
    assert agent_fields(b'{"type":"agent","agent_id":""}') is None
    assert agent_fields(b"[1]") is None and agent_fields(None) is None


def test_qa_is_broadcast_except_what_cannot_be_read() -> None:
    qa = msgs([b'{"type":"qa"}', b"junk", None], topic="p.qa")
    out = broadcast("p.qa_all", qa, frozenset({"p.qa:0:1"}))
    assert out == [Forward("p.qa_all", None, b'{"type":"qa"}', everywhere=True)]


def test_routed_topics_only_with_route_by_queue() -> None:
    assert BY_QUEUE not in routed_topic_names(KafkaSettings(topic_prefix="x."))
    names_ = routed_topic_names(KafkaSettings(topic_prefix="x.", route_by_queue=True))
    assert names_[BY_QUEUE] == "x.agents_by_queue" and names_[QA_ALL] == "x.qa_all" and names_["calls"] == "x.calls"


def test_ownership() -> None:
    n = 3
    own = Ownership(frozenset({("c", key_partition("billing", n)), ("a", 2)}), "c", n, "a", n)
    assert own.owns_queue("billing")
    assert [own.owns_queue(q) for q in ("x1", "x2", "x3", "x4")] == [
        key_partition(q, n) == key_partition("billing", n) for q in ("x1", "x2", "x3", "x4")
    ]
    assert own.owns_agent("a-1") == (key_partition("a-1", n) == 2)
    assert own.owns_partition("a", 2) and not own.owns_partition("a", 1)
    assert EVERYTHING.owns_queue("x") and EVERYTHING.owns_partition("t", 9)
    assert not NOTHING.owns_queue("x") and not NOTHING.owns_agent("y") and not NOTHING.owns_partition("t", 0)


# --------------------------------------------------------------------------- exports


def _snapshot(queues: list[str]) -> KpiSnapshot:
    targets = QueueTargets(0.8, 0.05, 30.0, 120.0, 10, 15.0, "negative")
    wm = datetime(2026, 3, 2, 9, tzinfo=UTC)
    return KpiSnapshot(
        watermark=wm,
        interval_s=900,
        queues={
            q: QueueSnapshot(
                queue=q,
                targets=targets,
                windows={"5m": QueueKpis(offered=3)},
                interval=QueueKpis(),
                interval_start=wm,
                calls_waiting=1,
                oldest_wait_s=5.0,
                agents={("ready", ""): 2},
            )
            for q in queues
        },
    )


def test_a_lost_queue_and_partition_leave_metrics_at_the_next_scrape() -> None:
    a, b = (
        "billing",
        next(q for q in ("q1", "q2", "q3", "q4", "q5") if key_partition(q, 3) != key_partition("billing", 3)),
    )
    state = ExportState(
        snapshot=_snapshot([a, b]),
        health=Health(
            offsets=(PartitionOffset("c", key_partition(a, 3), 7, 0), PartitionOffset("c", key_partition(b, 3), 9, 1))
        ),
    )
    held: list[Ownership] = [EVERYTHING]
    registry = CollectorRegistry()
    registry.register(KpiCollector(lambda: state, ownership=lambda: held[0]))

    def scrape() -> str:
        return generate_latest(registry).decode()

    text = scrape()
    assert value(text, names.CALLS_WAITING.name, queue=a) == 1 and value(text, names.CALLS_WAITING.name, queue=b) == 1
    held[0] = Ownership(frozenset({("c", key_partition(a, 3))}), "c", 3, "a", 3)  # b's partition moved away
    text = scrape()
    assert value(text, names.CALLS_WAITING.name, queue=a) == 1
    assert f'queue="{b}"' not in text
    assert value(text, names.KAFKA_STORED_OFFSET.name, topic="c", partition=str(key_partition(a, 3))) == 7
    assert f'partition="{key_partition(b, 3)}"' not in text
    held[0] = NOTHING
    assert 'queue="' not in scrape() and "callpulse_kafka_stored_offset{" not in scrape()
    assert list(owned_only(_snapshot([a, b]), {a}.__contains__).queues) == [a]


# --------------------------------------------------------------------------- three workers


def spread_queues(n: int) -> tuple[QueueSpec, ...]:
    """Five simulated queues named so that every partition of ``n`` holds one at least."""
    names_: list[str] = []
    for i in range(200):
        name = f"queue-{i}"
        taken = {key_partition(q, n) for q in names_}
        if key_partition(name, n) not in taken or (len(taken) == n and len(names_) < 5):
            names_.append(name)
        if len(names_) == 5:
            break
    return tuple(QueueSpec(q, 300 + 100 * i, 6 + i, 200, 30, 90) for i, q in enumerate(names_))


class Node:
    """One worker of the group: its engine and OffsetSink, holding partition ``p`` of every topic."""

    def __init__(self, p: int, topics: dict[str, str]) -> None:
        self.p = p
        self.engine = engine()
        self.sink = OffsetSink(self.engine, topics.values(), routed=topics)


def rows(eng: Engine, query: str) -> list[tuple[Any, ...]]:
    return eng.store.con.execute(query).fetchall()


QUEUE_COLUMNS = (
    "queue, interval_start, offered, answered, abandoned, short_abandoned, exited, answered_in_sl, "
    "service_level, asa_s, abandon_rate, aht_s, transfer_rate, max_wait_s"
)
CALL_COLUMNS = (
    "call_id, queue, caller_key, agent_id, offered_at, answered_at, abandoned_at, exited_at, ended_at, "
    "outcome, wait_s, talk_s, hold_s, wrap_s, handle_s, transferred, case_id, category, resolved"
)


def test_three_workers_routed_by_queue_equal_one_engine() -> None:
    n = 3
    specs = spread_queues(n)
    day = list(simulate(SimConfig(seed=11, scale=0.5, queues=specs)))
    records = day[: len(day) * 3 // 5]  # mid-afternoon: agents logged in, calls waiting
    topics = routed_topic_names(KafkaSettings(topic_prefix="p.", route_by_queue=True))
    kind = {"call": "calls", "cdr": "calls", "agent": "agents", "qa": "qa"}
    key = {"call": "queue", "cdr": "queue", "agent": "agent_id", "qa": "call_id"}
    logs: dict[tuple[str, int], list[Message]] = {}

    def append(topic: str, partition: int, value: bytes) -> None:
        log = logs.setdefault((topic, partition), [])
        log.append(Message(topic, partition, len(log), value))

    for r in records:
        append(topics[kind[r["type"]]], key_partition(str(r[key[r["type"]]]), n), json.dumps(r).encode())
    nodes = [Node(p, topics) for p in range(n)]
    read: dict[tuple[str, int], int] = {}

    def step(node: Node, batch_size: int) -> bool:
        """One micro-batch of every topic's partition ``node.p``; forwards appended to their logs."""
        batches = []
        for topic in topics.values():
            log = logs.get((topic, node.p), [])
            start = read.get((topic, node.p), 0)
            if start < len(log):
                batches.append(log[start : start + batch_size])
                read[(topic, node.p)] = start + len(batches[-1])
        if not batches:
            return False
        for f in node.sink.plan(batches):
            targets = range(n) if f.everywhere else [key_partition((f.key or b"").decode(), n)]
            for p in targets:
                append(f.topic, p, f.value)
        node.sink.handle_all(batches)
        return True

    # The workers take turns, a batch each, until nothing is left (the forwards keep coming).
    while any([step(node, 97) for node in nodes]):
        pass
    single = engine()
    try:
        single.process_all([_raw(records)])
        wm = single.store.watermark()
        assert wm is not None
        for node in nodes:  # each worker's windows end at its own newest event: align them for the comparison
            node.engine.store.con.execute("UPDATE pipeline_state SET watermark = $wm", {"wm": wm})
        for query, order in (
            (f"SELECT {QUEUE_COLUMNS} FROM kpi_queue_interval", "queue, interval_start"),
            (f"SELECT {CALL_COLUMNS} FROM calls", "call_id, queue"),
        ):
            union = sorted(
                row
                for node in nodes
                for row in rows(node.engine, f"{query} ORDER BY {order}")
                if _owned(row[0] if "kpi" in query else row[1], node.p, n)
            )
            assert union == sorted(rows(single, query)) and union
        union_live = sorted(r for node in nodes for r in _agents_live(node.engine) if _owned(r[0], node.p, n))
        assert union_live == _agents_live(single) and union_live
        occupancy = _occupancy(single, wm)
        assert sorted(r for node in nodes for r in _occupancy(node.engine, wm) if _owned(r[0], node.p, n)) == occupancy
        assert any(o is not None for _, _, o in occupancy)
        qa = "SELECT call_id, agent_id, score FROM qa_evals ORDER BY ALL"
        assert all(rows(node.engine, qa) == rows(single, qa) for node in nodes)  # every worker has every QA
    finally:
        single.close()
        for node in nodes:
            node.engine.close()


def _owned(queue: str, p: int, n: int) -> bool:
    return key_partition(queue, n) == p


def _occupancy(eng: Engine, wm: datetime) -> list[tuple[Any, ...]]:
    got = sqlfiles.dicts(
        eng.store.con, "export/queue_occupancy", widths=[900, 3600], wm=wm, lo=wm.replace(hour=wm.hour - 1), since=None
    )
    return sorted((r["queue"], r["width_s"], r["occupancy"]) for r in got)


def _agents_live(eng: Engine) -> list[tuple[Any, ...]]:
    return sorted(
        (r["queue"], r["state"], r["reason"], r["agents"]) for r in sqlfiles.dicts(eng.store.con, "kpi/agents_live")
    )


def _raw(records: list[dict[str, Any]]) -> Any:
    from tests.helpers import batch

    return batch(records, "kafka:p.all")


def test_a_restarted_worker_routes_with_the_membership_stored_with_the_offset() -> None:
    topics = routed_topic_names(KafkaSettings(topic_prefix="p.", route_by_queue=True))
    eng = engine()
    try:
        sink = OffsetSink(eng, topics.values(), routed=topics)
        first = [msgs([agent("login", "00:00", ["billing", "sales"])])]
        assert keys(sink.plan(first)) == [["billing", "sales"]]
        sink.handle_all(first)
        restarted = OffsetSink(eng, topics.values(), routed=topics)  # a new process, the same database
        later = [msgs([agent("ready", "01:00")], start=1)]
        assert keys(restarted.plan(later)) == [["billing", "sales"]]
        assert restarted.plan(first) == []  # what DuckDB holds is not forwarded again
        qa = [
            msgs(
                [b'{"type":"qa","call_id":"c1","agent_id":"a1","score":90,"at":"2026-03-02T09:00:00Z"}', b"junk"],
                topic="p.qa",
            )
        ]
        assert [f.everywhere for f in restarted.plan(qa)] == [True]  # the junk is dead-lettered here, once
        restarted.handle_all(qa)
        stored = rows(eng, "SELECT (SELECT count(*) FROM qa_evals), (SELECT count(*) FROM dead_letters)")
        assert stored == [(0, 1)] and eng.store.offsets("kafka:p.qa") == {0: 1}
    finally:
        eng.close()


def test_worker_id_and_the_database_path() -> None:
    from pathlib import Path

    from pipeline.core.config import Config, ConfigError, _kafka, for_worker

    cfg = Config(db=Path("data/{worker}.duckdb"))
    assert for_worker(cfg, "w-2").db == Path("data/w-2.duckdb") and for_worker(cfg, "w-2").kafka.worker_id == "w-2"
    derived = for_worker(cfg)
    assert derived.kafka.worker_id and str(derived.db) == f"data/{derived.kafka.worker_id}.duckdb"
    assert _kafka({"worker_id": "east-1", "route_by_queue": True}).route_by_queue
    with pytest.raises(ConfigError, match="kafka.worker_id"):
        _kafka({"worker_id": "../x"})
    with pytest.raises(ConfigError, match="--worker-id"):
        for_worker(cfg, "a/b")
    with pytest.raises(ConfigError, match="kafka.route_by_queue"):
        _kafka({"route_by_queue": "yes"})


def test_the_claim_on_partitions_is_replaced_at_each_assignment() -> None:
    eng = engine()
    try:
        claims = "SELECT worker, source, partition, generation FROM worker_partitions ORDER BY ALL"
        eng.store.save_assignment("w1", 4, [("kafka:p.calls", 0), ("kafka:p.calls", 2)])
        assert rows(eng, claims) == [("w1", "kafka:p.calls", 0, 4), ("w1", "kafka:p.calls", 2, 4)]
        eng.store.save_assignment("w1", 7, [("kafka:p.agents", 1)])
        assert rows(eng, claims) == [("w1", "kafka:p.agents", 1, 7)]
        eng.store.save_assignment("w1", 9, [])
        assert rows(eng, claims) == []
    finally:
        eng.close()


def test_calls_and_agents_by_queue_must_have_as_many_partitions() -> None:
    from pipeline.core.errors import OperatorError
    from pipeline.ingest.sources.routing import check_copartitioned

    names_ = routed_topic_names(KafkaSettings(topic_prefix="x.", route_by_queue=True))
    fine = {"calls": 6, "agents": 3, BY_QUEUE: 6, QA_ALL: 2}
    assert check_copartitioned(fine, names_) is fine
    with pytest.raises(OperatorError, match=r"x\.calls has 6 partitions and x\.agents_by_queue 3"):
        check_copartitioned({**fine, BY_QUEUE: 3}, names_)
