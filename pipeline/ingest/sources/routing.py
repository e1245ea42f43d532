"""Routing between workers that share the queues (``[kafka] route_by_queue``, docs/kafka.md).

A queue's work is done by the worker holding the queue's partition of ``<prefix>calls``.
Agent events arrive keyed by agent: the worker holding an agent's partition of
``<prefix>agents`` (the router) forwards each event to ``<prefix>agents_by_queue``, keyed
by each queue of the agent, so that it lands on the queue owner's partition of that topic
(co-partitioned with calls). QA records arrive keyed by call: the worker reading them
forwards each to every partition of ``<prefix>qa_all``.

Lifecycle (the worker drives it, per micro-batch): ``OffsetSink.plan`` runs
``AgentRouter.forward`` / ``broadcast`` over the batch's fresh messages; ``send`` hands
the forwards to Kafka and waits for every acknowledgement; only then is the batch stored,
with the routers' memory (each agent's queues, ``adapter_agents``) and the offsets in
one transaction. A crash between the two sends the forwards again: at least once on
the hop, absorbed by the event keys at the receiving end.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.core.config import KafkaSettings
from pipeline.core.errors import OperatorError
from pipeline.core.records import AdapterMemory, AgentMemory
from pipeline.ingest.sources.kafka import Message, position, source_name, topic_names

BY_QUEUE = "agents_by_queue"
QA_ALL = "qa_all"
ROUTED_KINDS: tuple[str, ...] = (BY_QUEUE, QA_ALL)
NO_QUEUE = ""  # the key of an agent's events while none of its queues is known


def routed_topic_names(settings: KafkaSettings) -> dict[str, str]:
    """The base topics and, with ``route_by_queue``, the two the workers forward to."""
    names = topic_names(settings)
    if settings.route_by_queue:
        names.update({kind: f"{settings.topic_prefix}{kind}" for kind in ROUTED_KINDS})
    return names


@dataclass(frozen=True, slots=True)
class Forward:
    """One message to send: by ``key`` (Kafka's default partitioner), or to every
    partition of ``topic`` when ``everywhere``."""

    topic: str
    key: bytes | None
    value: bytes
    everywhere: bool = False


def agent_fields(value: bytes | None) -> tuple[str, tuple[str, ...] | None] | None:
    """(agent_id, queues or None) of an agent event's JSON; None when it is not one (the
    router's own store dead-letters it, nothing is forwarded)."""
    try:
        record: Any = json.loads(value or b"")
    except ValueError:
        return None
    if not isinstance(record, dict) or record.get("type") != "agent":
        return None
    agent, queues = record.get("agent_id"), record.get("queues")
    if not isinstance(agent, str) or not agent:
        return None
    if isinstance(queues, list):
        return agent, tuple(sorted({str(q) for q in queues if q is not None}))
    return agent, None


@dataclass(slots=True)
class _Members:
    """One agents partition's agents and their queues, as of offset ``last``."""

    queues: dict[str, tuple[str, ...]]
    last: int


class AgentRouter:
    """Agent events (one agents topic, any partitions) → forwards keyed by queue.

    An event goes to each queue the agent was a member of before it and each queue it
    reports (a login moving an agent from a, b to b, c reaches a, so a's owner sees it
    leave); an agent with no known queue goes under ``NO_QUEUE``. The membership of a
    partition's agents is this object's for as long as it continued from what DuckDB
    holds: when a batch does not continue at the partition's stored offset (a restart, a
    partition that was elsewhere) it starts again from ``recall`` (the ``adapter_agents``
    saved with that offset), as ``QueueLogDecoder`` does.
    """

    def __init__(self, recall: Callable[[str, int], tuple[AgentMemory, ...]] | None = None) -> None:
        self.recall = recall
        self.members: dict[tuple[str, int], _Members] = {}

    def _members(self, topic: str, partition: int, stored: Mapping[tuple[str, int], int]) -> _Members:
        tp = (topic, partition)
        held = stored.get(tp, -1)
        members = self.members.get(tp)
        if members is None or members.last != held:
            known = self.recall(source_name(topic), partition) if self.recall is not None and held >= 0 else ()
            members = self.members[tp] = _Members({a.agent_id: a.queues for a in known}, held)
        return members

    def forward(
        self, target: str, messages: Sequence[Message], stored: Mapping[tuple[str, int], int]
    ) -> tuple[list[Forward], list[AdapterMemory]]:
        """Forwards to topic ``target`` for fresh ``messages`` of one topic, in partition
        order, and each touched partition's membership after them (to store with the offsets)."""
        out: list[Forward] = []
        touched: list[int] = []
        for m in messages:
            if m.partition not in touched:  # once per batch: it continues where DuckDB stands, or not
                touched.append(m.partition)
                self._members(m.topic, m.partition, stored)
            members = self.members[(m.topic, m.partition)]
            fields = agent_fields(m.value)
            if fields is not None and m.value is not None:
                agent, reported = fields
                targets = set(members.queues.get(agent, ())) | set(reported or ())
                for queue in sorted(targets or {NO_QUEUE}):
                    out.append(Forward(target, queue.encode("utf-8"), m.value))
                if reported is not None:
                    members.queues[agent] = reported
            members.last = m.offset
        topic = messages[0].topic if messages else ""
        memory = [
            AdapterMemory(
                source_name(topic),
                p,
                tuple(AgentMemory(a, q) for a, q in sorted(self.members[(topic, p)].queues.items())),
            )
            for p in sorted(touched)
        ]
        return out, memory


def broadcast(target: str, messages: Iterable[Message], unreadable: frozenset[str]) -> list[Forward]:
    """Every message but the ``unreadable`` positions (dead-lettered by the reader, once),
    to every partition of ``target``."""
    return [
        Forward(target, None, m.value, everywhere=True)
        for m in messages
        if m.value is not None and position(m) not in unreadable
    ]


async def send(producer: Any, forwards: Sequence[Forward]) -> int:
    """Send ``forwards`` with an aiokafka producer and wait until the broker acknowledged
    every one (the caller stores the batch only then); return the messages sent."""
    partitions: dict[str, list[int]] = {}
    pending: list[asyncio.Future[Any]] = []
    for f in forwards:
        if not f.everywhere:
            pending.append(await producer.send(f.topic, f.value, key=f.key))
            continue
        if f.topic not in partitions:
            partitions[f.topic] = sorted(await producer.partitions_for(f.topic))
        for p in partitions[f.topic]:
            pending.append(await producer.send(f.topic, f.value, key=f.key, partition=p))
    if pending:
        await asyncio.gather(*pending)
    return len(pending)


def producer_for(settings: KafkaSettings) -> Any:
    """The worker's producer of forwards: idempotent, so a retry never reorders a partition."""
    from aiokafka import AIOKafkaProducer

    return AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap,
        linger_ms=5,
        acks="all",
        enable_idempotence=True,
        request_timeout_ms=60_000,
    )


def ensure_routed_topics(settings: KafkaSettings, timeout_s: float = 30.0) -> dict[str, int]:
    """Create the topics forwarded to, if missing, with as many partitions as the calls
    topic (which must exist); return the partition count of each topic kind."""
    return asyncio.run(_ensure_routed_topics(settings, timeout_s))


async def _ensure_routed_topics(settings: KafkaSettings, timeout_s: float) -> dict[str, int]:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    names = routed_topic_names(settings)
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap, request_timeout_ms=int(timeout_s * 1000))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        if names["calls"] not in existing:
            raise OperatorError(
                f"kafka: topic {names['calls']} does not exist; create the topics first "
                "(`callpulse produce` does; --partitions: at least as many as workers)"
            )
        partitions = await _partitions(admin, [names["calls"]])
        missing = [names[k] for k in ROUTED_KINDS if names[k] not in existing]
        if missing:
            await admin.create_topics(
                [NewTopic(name=t, num_partitions=partitions[names["calls"]], replication_factor=1) for t in missing],
                timeout_ms=int(timeout_s * 1000),
            )
        present = [t for t in names.values() if t in existing or t in missing]
        counts = await _partitions(admin, present)
        return {kind: counts.get(topic, 0) for kind, topic in names.items()}
    finally:
        await admin.close()


def check_copartitioned(partitions: dict[str, int], names: Mapping[str, str]) -> dict[str, int]:
    """``partitions`` (per topic kind) if the calls and agents_by_queue topics have as many
    partitions as each other, so that a queue's key lands on the same partition number in both."""
    calls, by_queue = partitions.get("calls", 0), partitions.get(BY_QUEUE, 0)
    if calls != by_queue:
        raise OperatorError(
            f"kafka: {names['calls']} has {calls} partitions and {names[BY_QUEUE]} {by_queue}; with "
            f"[kafka] route_by_queue they must be equal: delete {names[BY_QUEUE]} (the workers recreate it "
            f"with {calls}) or give it {calls}"
        )
    return partitions


async def _partitions(admin: Any, topics: list[str]) -> dict[str, int]:
    """Partitions per topic, from the cluster's metadata (the worker's consumer may not
    have it yet when its first assignment arrives)."""
    return {t["topic"]: len(t["partitions"]) for t in await admin.describe_topics(topics) if not t.get("error_code")}
