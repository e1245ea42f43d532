"""Kafka source: topic names, message batches → ``RawBatch``, offset bookkeeping, producing.

Topics (names from ``[kafka] topic_prefix``): ``<prefix>calls`` (call events and CDRs,
keyed by queue), ``<prefix>agents`` (keyed by agent_id), ``<prefix>qa`` (QA evaluations and
quality records, keyed by call_id), all JSON; ``<prefix>queue_log`` (raw Asterisk queue_log
lines, one per message, keyed by the Asterisk server's name so that one server's log stays
in order on one partition).

Consuming (the faust worker in ``pipeline.ingest.worker`` drives this):
  ``fresh(messages, stored)``     drop what DuckDB already holds (offset ≤ stored offset);
  ``batch_from_messages(...)``    one ``RawBatch`` per micro-batch, decoded together with
                                  polars, bad values dead-lettered at ``topic:partition:offset``,
                                  the batch's highest offset per partition attached so the
                                  store saves it in the same transaction as the rows;
  ``QueueLogDecoder.batch(...)``   the same for a queue_log topic, through one stateful
                                  ``QueueLogParser`` per (topic, partition);
  ``seek_positions(...)``         where each assigned partition resumes: stored offset + 1.
DuckDB's ``source_offsets`` is the truth; Kafka's committed offset only follows it.

Producing: ``produce_records(records, settings)`` (the simulator, dicts) and
``produce_lines(lines, settings)`` (files) route by record ``type``;
``produce_queue_log(lines, settings, server)`` sends raw queue_log lines keyed by the
server. All key, batch and linger with aiokafka, and return how many messages were sent.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import polars as pl

from pipeline.core.config import KafkaSettings
from pipeline.core.errors import ServiceUnavailable, first_line
from pipeline.core.pii import mask_phone_like
from pipeline.core.records import AdapterMemory, AgentMemory, DeadLetter, Parsed, RawBatch, SourceOffset
from pipeline.ingest.adapters.asterisk import QueueLogParser
from pipeline.ingest.sources.files import MAX_RAW, jsonl_batch

# A value larger than this is not decoded but dead-lettered (clipped). Kafka's own
# default limit is ~1 MB; a topic may allow more, the pipeline does not need it.
MAX_VALUE_BYTES = 1_048_576
QUEUE_LOG = "queue_log"
KINDS: tuple[str, ...] = ("calls", "agents", "qa", QUEUE_LOG)
# record type → (topic kind, key field)
ROUTES: dict[str, tuple[str, str]] = {
    "call": ("calls", "queue"),
    "cdr": ("calls", "queue"),
    "agent": ("agents", "agent_id"),
    "qa": ("qa", "call_id"),
    # a call's media quality, like a QA evaluation, follows the call by call_id
    "quality": ("qa", "call_id"),
}
# Header carrying the producer's wall-clock send time (ms), for latency measurement.
SENT_AT_HEADER = "callpulse-sent-ms"


class Message(NamedTuple):
    """One consumed Kafka message, as much of it as the pipeline uses."""

    topic: str
    partition: int
    offset: int
    value: bytes | None
    timestamp_ms: int | None = None
    high_watermark: int | None = None  # the partition's, as the consumer knew it at the fetch


def topic_names(settings: KafkaSettings) -> dict[str, str]:
    """``{"calls": "<prefix>calls", "agents": ..., "qa": ..., "queue_log": ...}``."""
    return {kind: f"{settings.topic_prefix}{kind}" for kind in KINDS}


def source_name(topic: str) -> str:
    """The ``source`` of batches (and of ``source_offsets`` rows) from one topic."""
    return f"kafka:{topic}"


def position(message: Message) -> str:
    return f"{message.topic}:{message.partition}:{message.offset}"


# --------------------------------------------------------------------------- consuming


def fresh(messages: Iterable[Message], stored: Mapping[tuple[str, int], int]) -> list[Message]:
    """The messages DuckDB does not hold yet: offset > the stored offset of their partition.

    Defends against redelivery after a crash and faust-streaming#606 (a committed
    offset that lags, or runs ahead of, what was really stored).
    """
    return [m for m in messages if m.offset > stored.get((m.topic, m.partition), -1)]


def seek_positions(
    assigned: Iterable[tuple[str, int]], stored: Mapping[tuple[str, int], int]
) -> dict[tuple[str, int], int]:
    """Where each assigned partition resumes: stored offset + 1, or 0 when DuckDB has none.

    Never the group's committed offset: faust acks (and commits) a batch the worker
    dropped while stopping, and a restored backup may predate a partition's first batch.
    An offset below the log start (retention) resets to the earliest one still kept.
    """
    return {tp: stored[tp] + 1 if tp in stored else 0 for tp in assigned}


def highest_offsets(messages: Iterable[Message]) -> dict[tuple[str, int], int]:
    """The highest offset per (topic, partition) among ``messages``."""
    top: dict[tuple[str, int], int] = {}
    for m in messages:
        key = (m.topic, m.partition)
        if m.offset > top.get(key, -1):
            top[key] = m.offset
    return top


def batch_offsets(messages: Sequence[Message]) -> list[SourceOffset]:
    """The highest offset per partition in a batch, as ``SourceOffset``s, with the highest
    high watermark known for the partition."""
    # One pass, the same few comparisons per message: a catch-up batch holds 100,000s.
    top: dict[tuple[str, int], list[int]] = {}  # [highest offset, highest watermark or -1]
    for m in messages:
        seen = top.get((m.topic, m.partition))
        if seen is None:
            top[(m.topic, m.partition)] = [m.offset, -1 if m.high_watermark is None else m.high_watermark]
            continue
        if m.offset > seen[0]:
            seen[0] = m.offset
        if m.high_watermark is not None and m.high_watermark > seen[1]:
            seen[1] = m.high_watermark
    return [SourceOffset(source_name(t), p, o, None if hw < 0 else hw) for (t, p), (o, hw) in sorted(top.items())]


def batch_from_messages(topic: str, messages: Sequence[Message], max_value_bytes: int = MAX_VALUE_BYTES) -> RawBatch:
    """One ``RawBatch`` from the messages of one topic (any partitions).

    Empty and oversized values become dead letters here; the rest are decoded
    together by ``files.jsonl_batch`` (which dead-letters malformed JSON and
    non-objects). A value spanning several lines is decoded on its own, so it can
    never shift the rows of its neighbours.
    """
    source = source_name(topic)
    dead: list[DeadLetter] = []
    lines: list[bytes] = []
    # the positions of ``lines`` ("topic:partition:offset"), made as one column below
    partitions: list[int] = []
    offsets: list[int] = []
    multiline: list[tuple[bytes, str]] = []
    for m in messages:
        value = (m.value or b"").strip()
        if not value:
            dead.append(DeadLetter(source, position(m), "", "empty message"))
        elif len(value) > max_value_bytes:
            dead.append(DeadLetter(source, position(m), _clip(value), f"message too large: {len(value)} bytes"))
        elif b"\n" in value or b"\r" in value:
            multiline.append((value, position(m)))
        else:
            lines.append(value)
            partitions.append(m.partition)
            offsets.append(m.offset)
    if lines:
        positions = pl.select(
            pl.concat_str(
                pl.lit(f"{topic}:"),
                pl.Series(partitions, dtype=pl.Int64),
                pl.lit(":"),
                pl.Series(offsets, dtype=pl.Int64),
            )
        ).to_series()
        parts = [jsonl_batch(lines, positions, source)]
    else:
        parts = []
    parts += [jsonl_batch([v], [p], source) for v, p in multiline]
    frames = [p.frame for p in parts]
    frame = pl.concat(frames, how="vertical") if frames else RawBatch.from_items(source, []).frame
    for part in parts:
        dead.extend(part.dead)
    return RawBatch(source=source, frame=frame, dead=dead, offsets=batch_offsets(messages))


class MicroBatcher:
    """Collects fetched messages into micro-batches bounded by size and time.

    A batch is due when it holds ``batch_size`` messages, or when the consumer of
    batches has room for one more and ``within_s`` has passed since the last batch was
    taken: at most one batch per ``within_s`` while messages trickle in (the fixed cost of
    a batch is paid that often, not per message), and none waits longer than it must.
    Counting from the last take, not from the oldest pending message, matters under load:
    what collected while the store was busy waits only for what is left of ``within_s``
    since the previous batch was taken (nothing, if the store took longer), instead of
    a time bound of its own that started with its first message.
    While the consumer is busy, messages keep accumulating (up to ``batch_size``), so
    under a backlog batches grow to the size the store handles best instead of queueing
    up. Messages keep their partition order; a batch keeps one list per topic.
    """

    def __init__(self, batch_size: int, within_s: float) -> None:
        self.batch_size = max(1, batch_size)
        self.within_s = within_s
        self.count = 0
        self.taken_at = float("-inf")  # when the last batch was taken
        self._pending: dict[str, list[Message]] = {}

    def add(self, messages: Iterable[Message]) -> None:
        for m in messages:
            self._pending.setdefault(m.topic, []).append(m)
            self.count += 1

    def extend(self, topic: str, messages: list[Message]) -> None:
        """``add`` for messages all of ``topic`` (one partition's share of a fetch), in one step."""
        self._pending.setdefault(topic, []).extend(messages)
        self.count += len(messages)

    def due(self, now: float, room: bool) -> bool:
        if self.count >= self.batch_size:
            return True
        return room and self.count > 0 and now - self.taken_at >= self.within_s

    def wait_s(self, now: float, ceiling: float = 1.0) -> float:
        """How long a fetch may block before the pending messages are due."""
        if not self.count:
            return ceiling
        return min(ceiling, max(0.0, self.taken_at + self.within_s - now))

    def take(self, now: float) -> list[list[Message]]:
        """The pending messages, one list per topic, and start a new batch."""
        batches = list(self._pending.values())
        self._pending, self.count, self.taken_at = {}, 0, now
        return batches

    def clear(self) -> None:
        """Drop what is pending (a rebalance: the partitions are sought again from DuckDB)."""
        self._pending, self.count = {}, 0


@dataclass(slots=True)
class _Tail:
    """One partition's parser and the offset of the last message it was given."""

    parser: QueueLogParser
    last: int


class QueueLogDecoder:
    """Batches of a queue_log topic → ``RawBatch``, one ``QueueLogParser`` per (topic, partition).

    Lifecycle: made once per worker process (``pipeline.ingest.worker.OffsetSink``, engine
    thread) and kept across faust sessions; ``batch()`` runs once per micro-batch, with
    the messages in partition order. The parser is stateful (open calls, agents' calls
    and pauses), so a partition's parser is replaced by a fresh one whenever a batch
    does not continue where that parser stopped, i.e. when DuckDB's stored offset for
    the partition is not the last offset the parser saw (another worker stored the
    partition's messages in between, after a rebalance) or after a restart. A fresh
    parser starts from what ``recall`` gives (the store's ``adapter_memory``: the agents'
    state saved with the partition's offset, in the same transaction; each batch carries
    the parsers' memory for that); of the calls, the adapter rebuilds a missing
    ``offered`` / ``answered`` from the closing line, with the same key, and the store
    keeps one.

    Values: one queue_log line per message, as Asterisk writes it (a value holding
    several lines is read line by line, all at the message's position). Empty and
    oversized values are dead-lettered here, broken lines and unknown verbs by the
    parser; every record and dead letter is at ``topic:partition:offset``. Text
    timestamps are read in ``timezone`` (the site's).
    """

    def __init__(
        self,
        timezone: str = "UTC",
        max_value_bytes: int = MAX_VALUE_BYTES,
        recall: Callable[[str, int], tuple[AgentMemory, ...]] | None = None,
    ) -> None:
        self.timezone = timezone
        self.max_value_bytes = max_value_bytes
        self.recall = recall
        self.tails: dict[tuple[str, int], _Tail] = {}

    def _parser(self, topic: str, partition: int, stored: Mapping[tuple[str, int], int]) -> QueueLogParser:
        """The partition's parser, fresh unless it saw exactly what DuckDB holds."""
        tp = (topic, partition)
        held = stored.get(tp, -1)
        tail = self.tails.get(tp)
        if tail is None or tail.last != held:
            source = source_name(topic)
            agents = self.recall(source, partition) if self.recall is not None and held >= 0 else ()
            tail = self.tails[tp] = _Tail(QueueLogParser(source, timezone=self.timezone, agents=agents), held)
        return tail.parser

    def batch(
        self, topic: str, messages: Sequence[Message], stored: Mapping[tuple[str, int], int] | None = None
    ) -> RawBatch:
        """Decode fresh messages of one topic; ``stored`` is DuckDB's offset per partition
        before this batch (what ``fresh`` filtered on)."""
        source = source_name(topic)
        held = dict(stored or {})
        items: list[Parsed | DeadLetter] = []
        checked: set[int] = set()
        for m in messages:
            if m.partition not in checked:
                checked.add(m.partition)
                self._parser(topic, m.partition, held)
            tail = self.tails[(topic, m.partition)]
            pos = position(m)
            value = (m.value or b"").rstrip(b"\r\n")
            if not value.strip():
                items.append(DeadLetter(source, pos, "", "empty message"))
            elif len(value) > self.max_value_bytes:
                items.append(DeadLetter(source, pos, _clip(value), f"message too large: {len(value)} bytes"))
            else:
                for line in value.decode("utf-8", errors="replace").splitlines():
                    items.extend(tail.parser.feed(pos, line))
            tail.last = m.offset
        memory = [AdapterMemory(source, p, self.tails[(topic, p)].parser.memory()) for p in sorted(checked)]
        return RawBatch.from_items(source, items, batch_offsets(messages), memory)


def _clip(value: bytes) -> str:
    text = value[: MAX_RAW + 1].decode("utf-8", errors="replace")
    if len(value) > MAX_RAW:
        text = text[:MAX_RAW] + f"...[{len(value) - MAX_RAW} more bytes]"
    return mask_phone_like(text)


# --------------------------------------------------------------------------- producing


@dataclass(frozen=True, slots=True)
class Routed:
    topic: str
    key: bytes | None
    value: bytes


def route(record: Any, topics: Mapping[str, str]) -> tuple[str, bytes | None]:
    """Topic and key of a parsed record; anything unroutable goes to the calls topic unkeyed
    (the worker dead-letters it there, so nothing produced is silently dropped)."""
    if isinstance(record, dict):
        chosen = ROUTES.get(record.get("type"))  # type: ignore[arg-type]
        if chosen is not None:
            kind, key_field = chosen
            key = record.get(key_field)
            return topics[kind], None if key is None else str(key).encode("utf-8")
    return topics["calls"], None


def route_records(records: Iterable[dict[str, Any]], topics: Mapping[str, str]) -> Iterable[Routed]:
    dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
    for record in records:
        topic, key = route(record, topics)
        yield Routed(topic, key, dumps(record).encode("utf-8"))


def route_lines(lines: Iterable[bytes], topics: Mapping[str, str]) -> Iterable[Routed]:
    """File lines (blank ones skipped) as routed messages, the value byte for byte as read."""
    for line in lines:
        value = line.strip()
        if not value:
            continue
        try:
            record: Any = json.loads(value)
        except ValueError:
            record = None
        topic, key = route(record, topics)
        yield Routed(topic, key, value)


def route_queue_log(lines: Iterable[bytes], topics: Mapping[str, str], server: str) -> Iterable[Routed]:
    """queue_log lines (blank ones skipped) to the queue_log topic, keyed by ``server``: one
    server's lines land on one partition, in the order given (the log's order)."""
    key = server.encode("utf-8")
    for line in lines:
        value = line.rstrip(b"\r\n")
        if value.strip():
            yield Routed(topics[QUEUE_LOG], key, value)


def wait_for_broker(
    settings: KafkaSettings,
    on_retry: Callable[[int, str, float], None],
    stop: threading.Event | None = None,
    max_delay_s: float = 30.0,
) -> None:
    """Return once a broker of ``settings.bootstrap`` answers; retry with a doubling
    back-off (``on_retry(attempt, reason, delay)`` before each wait) for at most
    ``settings.start_timeout_s``, then raise ``ServiceUnavailable``."""
    deadline = time.monotonic() + settings.start_timeout_s
    delay = 1.0
    attempt = 0
    while True:
        attempt += 1
        try:
            asyncio.run(_bootstrap(settings.bootstrap))
            return
        except Exception as exc:  # noqa: BLE001 - every failure to connect is "not reachable yet"
            reason = "cannot connect" if type(exc).__name__ == "KafkaConnectionError" else first_line(exc)
        remaining = deadline - time.monotonic()
        if remaining <= 0 or (stop is not None and stop.is_set()):
            raise ServiceUnavailable(
                f"kafka: no broker reachable at {settings.bootstrap} after {attempt} attempt"
                f"{'s' if attempt > 1 else ''} in {settings.start_timeout_s:g} s ({reason}); check [kafka] bootstrap "
                "or CALLPULSE_KAFKA_BOOTSTRAP and that the broker runs ([kafka] start_timeout: how long to try)"
            )
        wait = min(delay, remaining)
        on_retry(attempt, reason, wait)
        if stop is not None:
            stop.wait(wait)
        else:
            time.sleep(wait)
        delay = min(delay * 2, max_delay_s)


async def _bootstrap(bootstrap: str) -> None:
    from aiokafka.client import AIOKafkaClient

    client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    # aiokafka logs each refused connection itself; the caller says it once, in one line
    quiet = logging.getLogger("aiokafka")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)
    try:
        await client.bootstrap()
    finally:
        quiet.setLevel(level)
        await client.close()


def ensure_topics(settings: KafkaSettings, partitions: int = 3, timeout_s: float = 30.0) -> list[str]:
    """Create the four topics if missing (replication 1); return the ones created."""
    return asyncio.run(_ensure_topics(settings, partitions, timeout_s))


async def _ensure_topics(settings: KafkaSettings, partitions: int, timeout_s: float) -> list[str]:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap, request_timeout_ms=int(timeout_s * 1000))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in topic_names(settings).values() if t not in existing]
        if missing:
            await admin.create_topics(
                [NewTopic(name=t, num_partitions=partitions, replication_factor=1) for t in missing],
                timeout_ms=int(timeout_s * 1000),
            )
        return missing
    finally:
        await admin.close()


def produce_records(
    records: Iterable[dict[str, Any]],
    settings: KafkaSettings,
    progress: Callable[[int], None] | None = None,
    rate: float = 0.0,
    stamp: bool = False,
) -> int:
    """Send native records (dicts) to their topics; return how many were sent.

    ``rate`` > 0 paces sending to that many records per second (latency measurement);
    ``stamp`` adds the ``callpulse-sent-ms`` header with the send time.
    """
    return asyncio.run(produce_async(route_records(records, topic_names(settings)), settings, progress, rate, stamp))


def produce_lines(
    lines: Iterable[bytes], settings: KafkaSettings, progress: Callable[[int], None] | None = None
) -> int:
    """Send JSON-lines file content, one message per non-blank line; return the count."""
    return asyncio.run(produce_async(route_lines(lines, topic_names(settings)), settings, progress))


def produce_queue_log(
    lines: Iterable[bytes], settings: KafkaSettings, server: str, progress: Callable[[int], None] | None = None
) -> int:
    """Send raw queue_log lines of one Asterisk server, one message per non-blank line,
    keyed by ``server``; return the count. Ordered: the producer is idempotent, so
    retries never reorder a partition."""
    return asyncio.run(produce_async(route_queue_log(lines, topic_names(settings), server), settings, progress))


async def produce_async(
    messages: Iterable[Routed],
    settings: KafkaSettings,
    progress: Callable[[int], None] | None = None,
    rate: float = 0.0,
    stamp: bool = False,
    max_request_bytes: int = 4 * 1_048_576,
) -> int:
    """Send routed messages with one batching aiokafka producer; waits until all are acked."""

    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap,
        linger_ms=20,
        max_batch_size=512 * 1024,
        max_request_size=max_request_bytes,
        acks="all",
        enable_idempotence=True,
        request_timeout_ms=120_000,
    )
    await producer.start()
    sent = 0
    pending: list[asyncio.Future[Any]] = []
    started = time.monotonic()
    try:
        for msg in messages:
            if rate > 0 and sent % 100 == 0:
                ahead = started + sent / rate - time.monotonic()
                if ahead > 0:
                    await asyncio.sleep(ahead)
            headers = [(SENT_AT_HEADER, str(time.time_ns() // 1_000_000).encode())] if stamp else None
            pending.append(await producer.send(msg.topic, msg.value, key=msg.key, headers=headers))
            sent += 1
            if len(pending) >= 10_000:
                await asyncio.gather(*pending)
                pending.clear()
                if progress is not None:
                    progress(sent)
        await producer.flush()
        await asyncio.gather(*pending)
        if progress is not None:
            progress(sent)
    finally:
        await producer.stop()
    return sent
