"""The streaming worker: a faust-streaming app on Kafka feeding ``Engine.process``.

Lifecycle of ``KafkaWorker.run()``:
  open      the engine (DuckDB) and the runtime services (refresher, /metrics, wallboard)
            on the engine thread, the only thread that writes to DuckDB;
  session   a faust app + ``faust.Worker`` on a fresh event loop. faust's consumer (see
            ``BatchFeed``) drains whole fetched record batches into micro-batches bounded
            by ``batch_size`` and ``batch_within_s`` (growing under a backlog), each ONE
            event for the ``callpulse.store`` agent (``concurrency=1``); per topic, JSON
            values are decoded together with polars and queue_log lines through one
            stateful ``QueueLogParser`` per partition (kept by ``OffsetSink`` for the
            process's life). On partition assignment every assigned partition is moved
            (Kafka commit + seek) to DuckDB's stored offset + 1; each topic's messages are
            filtered by ``kafka.fresh``, and a micro-batch's topics are stored as ONE
            ``RawBatch`` whose offsets the store writes in the same transaction as the rows. Kafka's committed offsets
            then follow what was stored (for lag monitors; nothing depends on them).
  restart   if the faust app crashes (a broker outage can do that), a new session starts
            after a back-off, again from the offsets in DuckDB;
  stop      at ``duration_s`` / ``max_events`` / SIGTERM / SIGINT: the faust worker stops,
            the batch being stored finishes, the engine closes. A SIGKILL at any moment is
            safe: a batch is stored with its offsets, or not at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pipeline.core.config import Config, KafkaSettings
from pipeline.core.engine import Engine
from pipeline.core.errors import OperatorError
from pipeline.core.ownership import NOTHING, Ownership
from pipeline.core.records import AdapterMemory, RawBatch
from pipeline.ingest.sources.kafka import (
    QUEUE_LOG,
    Message,
    MicroBatcher,
    QueueLogDecoder,
    batch_from_messages,
    fresh,
    highest_offsets,
    seek_positions,
    source_name,
    wait_for_broker,
)
from pipeline.ingest.sources.routing import (
    BY_QUEUE,
    QA_ALL,
    AgentRouter,
    Forward,
    broadcast,
    check_copartitioned,
    ensure_routed_topics,
    producer_for,
    routed_topic_names,
    send,
)
from pipeline.serve.host import Services

log = logging.getLogger("callpulse.worker")
T = TypeVar("T")
Handler = Callable[[list[list[Message]]], Awaitable[None]]
StartServices = Callable[[Engine, Config, bool], Services]


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    """How long to run and how to talk to the consumer group."""

    duration_s: float = 0.0  # 0: until stopped
    max_events: int = 0  # Kafka messages stored or dead-lettered; 0: no limit
    serve: bool = True
    session_timeout_s: float = 10.0  # a killed worker's partitions move on after this
    restart_backoff_s: float = 2.0


@dataclass(slots=True)
class WorkerSummary:
    messages: int = 0  # fresh messages handed to the engine
    skipped: int = 0  # redelivered messages DuckDB already held
    batches: int = 0
    sessions: int = 0
    seconds: float = 0.0


def _log_broker_retry(attempt: int, reason: str, delay: float) -> None:
    log.warning("kafka: attempt %d failed (%s); retrying in %.0f s", attempt, reason, delay)


class EngineThread:
    """Runs every call that touches DuckDB on one thread, one at a time."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="engine")

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        return self._pool.submit(fn, *args).result()

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.wrap_future(self._pool.submit(fn, *args))

    def close(self) -> None:
        self._pool.shutdown(wait=True)


class OffsetSink:
    """Engine-thread side: the stored offsets (from DuckDB) and the one call to ``process``.

    Batches from ``queue_log_topics`` are raw Asterisk lines, decoded by ``queue_log``
    (its parsers live as long as this sink: the worker process); the others are JSON.
    With ``routed`` (the topic names of ``[kafka] route_by_queue``), ``plan`` gives the
    forwards of a micro-batch, sent before ``handle_all`` stores it: agent events are
    stored here too (this worker owns their agents) with the router's memory, QA records
    only where they are forwarded to (here: what cannot be read, and the offsets).
    """

    def __init__(
        self,
        engine: Engine,
        topics: Iterable[str],
        on_stored: Callable[[list[Message]], None] | None = None,
        queue_log_topics: Iterable[str] = (),
        timezone: str = "UTC",
        routed: dict[str, str] | None = None,
    ) -> None:
        self.engine = engine
        self.on_stored = on_stored
        self.topics = list(topics)
        self.queue_log_topics = frozenset(queue_log_topics)
        self.queue_log = QueueLogDecoder(timezone, recall=engine.store.adapter_memory)
        self.routed = routed
        self.router = AgentRouter(engine.store.adapter_memory)
        self._memory: dict[str, list[AdapterMemory]] = {}  # planned, stored by the next handle_all
        self.stored: dict[tuple[str, int], int] = {}
        self.reload()

    def reload(self) -> None:
        """Read ``source_offsets`` again (DuckDB is the truth)."""
        self.stored = {(t, p): o for t in self.topics for p, o in self.engine.store.offsets(source_name(t)).items()}

    def positions(self, assigned: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
        self.reload()
        return seek_positions(assigned, self.stored)

    def plan(self, batches: Iterable[list[Message]]) -> list[Forward]:
        """The forwards of a micro-batch's fresh messages (none unless ``routed``)."""
        self._memory = {}
        if self.routed is None:
            return []
        out: list[Forward] = []
        for messages in batches:
            new = fresh(messages, self.stored)
            if not new:
                continue
            topic = new[0].topic
            if topic == self.routed["agents"]:
                forwards, self._memory[topic] = self.router.forward(self.routed[BY_QUEUE], new, self.stored)
                out += forwards
            elif topic == self.routed["qa"]:
                unreadable = frozenset(d.position for d in batch_from_messages(topic, new).dead)
                out += broadcast(self.routed[QA_ALL], new, unreadable)
        return out

    def handle_all(self, batches: Iterable[list[Message]]) -> tuple[int, int]:
        """Store one micro-batch (a list of messages per topic) in ONE ``Engine.process``
        call: a transaction and a KPI refresh cost the same for 100 rows as for 10,000.
        Returns (stored, skipped)."""
        raw: list[RawBatch] = []
        stored: list[Message] = []
        seen = 0
        for messages in batches:
            seen += len(messages)
            new = fresh(messages, self.stored)
            if new:
                raw.append(self._decode(new))
                stored += new
        if raw:
            self.engine.process(RawBatch.concat(raw))
            self.stored.update(highest_offsets(stored))  # fresh: each above what was held
            if self.on_stored is not None:
                self.on_stored(stored)
        return len(stored), seen - len(stored)

    def handle(self, messages: list[Message]) -> tuple[int, int]:
        """Store the fresh messages of one topic; return (stored, skipped)."""
        return self.handle_all([messages])

    def _decode(self, new: list[Message]) -> RawBatch:
        topic = new[0].topic
        if topic in self.queue_log_topics:
            return self.queue_log.batch(topic, new, self.stored)
        batch = batch_from_messages(topic, new)
        if self.routed is not None and topic == self.routed["agents"]:
            batch.memory = self._memory.pop(topic, [])
        elif self.routed is not None and topic == self.routed["qa"]:
            batch = RawBatch(batch.source, batch.frame.clear(), batch.dead, batch.offsets)
        return batch


class BatchFeed:
    """The consumer's side of the worker: fetched records → micro-batches → the store agent.

    faust's own delivery path (one ``Message``, one ``Event`` and an ``asyncio.wait`` per
    record, then ``stream.take``) costs Python work per record even with a handler that
    does nothing, which caps the rate below what the store can take. So the worker's faust
    consumer drains the fetched records itself (``drain``, run by faust's Fetcher in place
    of its per-record ``_drain_messages``): whole record batches from aiokafka go into a ``MicroBatcher``
    (size and time bound), and each due batch is ONE event on an in-memory channel read
    by a faust agent (``store_agent``). Group membership, rebalancing, flow control and
    the partition-assignment hook stay faust's.
    """

    def __init__(self, batch_size: int, within_s: float) -> None:
        self.batcher = MicroBatcher(batch_size, within_s)
        self.channel: Any = None  # the store agent's channel, set once the app exists
        self.queued = 0  # batches sent to the agent that it has not finished storing
        # Per group generation, where each assigned partition resumes (DuckDB's offset + 1),
        # set by the assignment hook and applied by ``drain`` before it keeps what it fetches.
        self.seeks: dict[int, dict[Any, int]] = {}
        # Whether what is pending may be sent (set by ``drain``: the consumer's generation
        # is the one whose positions were applied, and its flow is on).
        self._current: Callable[[], bool] = lambda: False
        self._sending: set[asyncio.Task[None]] = set()  # sends started by ``done``

    def done(self) -> None:
        """The agent finished a batch (stored or not). What collected meanwhile is sent at once
        if it is due: waiting for the drain's next fetch would add up to ``fetch_wait`` to
        every event of it."""
        self.queued = max(0, self.queued - 1)
        if self.queued == 0 and self._current() and self.batcher.due(time.monotonic(), room=True):
            # On a task of its own, never awaited here: this runs inside the agent, and if the
            # channel still held a batch (``queued`` is reset by a rebalance, so it can be
            # wrong) the agent would wait on itself to take it.
            task = asyncio.ensure_future(self._send())
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    def close(self) -> None:
        """Drop the sends ``done`` started that are still waiting (the session is over)."""
        for task in self._sending:
            task.cancel()

    async def _send(self) -> None:
        self.queued += 1
        await self.channel.send(value=self.batcher.take(time.monotonic()))

    async def drain(self, consumer: Any, fetcher: Any) -> None:
        """Runs as faust's Fetcher task until the consumer or the fetcher stops."""
        app = consumer.app
        sought = -1  # the generation whose positions were applied
        batcher = self.batcher
        self._current = lambda: app.consumer_generation_id == sought and consumer.flow_active
        while not (consumer._stopped.is_set() or fetcher._stopped.is_set()):
            timeout = max(0.01, batcher.wait_s(time.monotonic()))
            records, _ = await consumer._wait_next_records(timeout)
            generation = app.consumer_generation_id
            if generation != sought or not consumer.flow_active:
                # A rebalance: what was fetched may belong to partitions now elsewhere, or
                # start at the group's committed offset (faust seeks there when it resumes).
                # Drop it, and once the hook decided the positions move every assigned
                # partition to DuckDB's offset, here, after faust's own seek: the hook
                # itself runs inside aiokafka's rebalance, where a seek or commit of a
                # running consumer can leave its fetcher stalled for good.
                batcher.clear()
                self.queued = 0  # faust empties the agent's channel when flow resumes
                if await self._resume(consumer, generation):
                    sought = generation
                continue
            now = time.monotonic()
            for tp, recs in (records or {}).items():
                if recs and type(recs[0]) is not Message:  # fetched before MessageRecords was in place
                    hw = high_watermark(consumer, tp)
                    recs = [Message(tp.topic, tp.partition, r.offset, r.value, r.timestamp, hw) for r in recs]
                batcher.extend(tp.topic, recs)
            # A batch due by time waits while the agent is storing one: what arrives
            # meanwhile joins it (up to batch_size), so a busy store gets fewer, larger batches.
            if batcher.due(now, room=self.queued == 0):
                await self._send()

    async def _resume(self, consumer: Any, generation: int) -> bool:
        """Apply the generation's positions if the hook set them (else wait a little);
        whether they were applied."""
        positions = self.seeks.get(generation)
        if positions is None or not consumer.flow_active:
            await asyncio.sleep(0.05)
            return False
        if positions:
            # on the consumer's thread: faust's plain ``seek`` calls aiokafka from this one
            await consumer.seek_wait(positions)
        self.seeks.pop(generation, None)
        return True


def high_watermark(consumer: Any, tp: Any) -> int | None:
    """The partition's high watermark from the consumer's last fetch (None if not known yet)."""
    try:
        hw = consumer.highwater(tp)
    except Exception:  # noqa: BLE001 - a lag figure is never worth stopping the drain for
        return None
    return hw if isinstance(hw, int) and hw >= 0 else None


class StoredCommits:
    """Lets the group's committed offsets follow what DuckDB stored (for lag monitors only:
    the worker resumes from DuckDB), on a task of its own: the next batch never waits for
    a broker round trip. One commit at a time, so offsets only move forward; what is
    stored meanwhile goes in the next. A failed commit (broker away) is retried by the next."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._due: dict[tuple[str, int], int] = {}
        self._task: asyncio.Task[None] | None = None

    def add(self, batches: list[list[Message]]) -> None:
        for key, offset in highest_offsets(m for messages in batches for m in messages).items():
            self._due[key] = max(offset, self._due.get(key, -1))
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._commit())

    async def close(self, timeout_s: float = 5.0) -> None:
        """Let the commit in flight finish (the consumer is about to stop), or drop it after
        ``timeout_s``: nothing depends on it, and a broker that is away may not answer."""
        if self._task is not None and not self._task.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._task, timeout_s)

    async def _commit(self) -> None:
        from faust.types import TP

        while self._due:
            top, self._due = self._due, {}
            try:
                await self.app.consumer._commit({TP(t, p): o + 1 for (t, p), o in top.items()})
            except Exception as exc:  # noqa: BLE001 - nothing depends on Kafka's commit
                log.debug("commit of stored offsets failed: %r", exc)


class MessageRecords(dict):  # type: ignore[type-arg]
    """aiokafka's fetched results per partition (``Fetcher._records``), each yielding our
    ``Message`` where aiokafka would build a ``ConsumerRecord``.

    A ``ConsumerRecord`` is an 11-field dataclass filled with every size, checksum and
    header of the record, and the drain would then copy each into a ``Message``: in a
    catch-up that was a third of the time the process held the GIL, on the consumer's
    thread, while the engine thread waited to decode and validate. aiokafka still walks
    the record batches itself (offsets, aborted transactions, control batches, CRCs);
    only the per-record object it yields is ours. The partition's high watermark is the
    one of the fetch response the records came in.
    """

    def __init__(self, results: dict[Any, Any]) -> None:
        super().__init__()
        for tp, result in results.items():
            self[tp] = result

    def __setitem__(self, tp: Any, result: Any) -> None:
        records = getattr(result, "_partition_records", None)
        if records is not None:
            topic, partition = tp.topic, tp.partition
            hw = result._assignment.state_value(tp).highwater
            hw = hw if isinstance(hw, int) and hw >= 0 else None

            def message(_tp: Any, record: Any) -> Message:
                return Message(topic, partition, record.offset, record.value, record.timestamp, hw)

            records._consumer_record = message
        super().__setitem__(tp, result)


# What a fetch waits for (up to ``[kafka] fetch_wait``) before the broker answers it.
FETCH_MIN_BYTES = 64 * 1024


def batching_transport(feed: BatchFeed, fetch_wait_s: float = 0.0) -> type:
    """faust's aiokafka transport whose consumer drains fetched records through ``feed``,
    each fetch held by the broker up to ``fetch_wait_s`` for FETCH_MIN_BYTES (0: answered
    as soon as one record is there)."""
    from faust.transport.drivers import aiokafka as driver

    class FetchThread(driver.AIOKafkaConsumerThread):  # type: ignore[misc]
        def _create_worker_consumer(self, transport: Any) -> Any:
            consumer = super()._create_worker_consumer(transport)
            # faust passes aiokafka a fixed fetch_max_wait_ms and the default fetch_min_bytes
            # (1); aiokafka hands these to its fetcher when the consumer starts.
            consumer._fetch_min_bytes = FETCH_MIN_BYTES if fetch_wait_s > 0 else 1
            consumer._fetch_max_wait_ms = max(1, round(fetch_wait_s * 1000))
            return consumer

        async def _fetch_records(self, consumer: Any, *args: Any, **kwargs: Any) -> Any:
            fetcher = consumer._fetcher
            if type(fetcher._records) is not MessageRecords:
                fetcher._records = MessageRecords(fetcher._records)
            return await super()._fetch_records(consumer, *args, **kwargs)

    class BatchConsumer(driver.Consumer):  # type: ignore[misc]
        def _new_consumer_thread(self) -> Any:
            return FetchThread(self, loop=self.loop, beacon=self.beacon)

        async def _drain_messages(self, fetcher: Any) -> None:
            await feed.drain(self, fetcher)

    class BatchTransport(driver.Transport):  # type: ignore[misc]
        Consumer = BatchConsumer

    return BatchTransport


def store_agent(handler: Handler) -> Callable[[Any], Awaitable[None]]:
    """The agent body: each event is one micro-batch (a list of messages per topic)."""

    async def consume(stream: Any) -> None:
        async for batches in stream:
            await handler(batches)

    return consume


# What one fetch may bring per partition. Under a backlog a micro-batch is what the
# fetches brought while the store was busy, and fewer, larger batches catch up faster
# (each batch's maintenance costs about the same whatever its size; `make bench --only
# kafka` measures it). At live rates a fetch holds what arrived, far less.
MAX_PARTITION_FETCH_BYTES = 16 * 1_048_576


# faust's data folder (empty with an in-memory store, but faust makes one), named by the
# worker's pid: a worker killed with SIGKILL cannot remove its own, the next one does.
DATADIR_PREFIX = "callpulse-faust-"


def stale_datadirs(names: Iterable[str], alive: Callable[[int], bool]) -> list[str]:
    """The faust data folders among ``names`` whose worker (the pid in the name) is gone."""
    stale = []
    for name in names:
        pid = name.removeprefix(DATADIR_PREFIX).partition("-")[0]
        if name.startswith(DATADIR_PREFIX) and pid.isdigit() and not alive(int(pid)):
            stale.append(name)
    return stale


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def faust_datadir() -> str:
    """A new data folder for a faust session, after removing those of dead workers."""
    tmp = Path(tempfile.gettempdir())
    for name in stale_datadirs((p.name for p in tmp.glob(DATADIR_PREFIX + "*")), _alive):
        shutil.rmtree(tmp / name, ignore_errors=True)
    return tempfile.mkdtemp(prefix=f"{DATADIR_PREFIX}{os.getpid()}-")


def build_app(settings: KafkaSettings, options: WorkerOptions, datadir: str) -> Any:
    import faust

    return faust.App(
        settings.group,
        TableManager=table_manager(),
        broker="kafka://" + settings.bootstrap,
        value_serializer="raw",
        key_serializer="raw",
        store="memory://",
        web_enabled=False,
        web_host="127.0.0.1",
        autodiscover=False,
        datadir=datadir,
        topic_disable_leader=True,
        topic_allow_declare=False,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=options.session_timeout_s,
        broker_heartbeat_interval=max(1.0, options.session_timeout_s / 4),
        consumer_max_fetch_size=MAX_PARTITION_FETCH_BYTES,
        # faust's own PartitionAssignor only while this is >= 1 (at 0, without tables, aiokafka's
        # round robin): it gives a member the same partition numbers of every topic with the
        # same partition count, which route_by_queue relies on (calls and agents_by_queue).
        table_standby_replicas=1,
    )


def table_manager() -> type:
    """faust's table manager without the second it waits at every start.

    faust's ``TableManager.on_start`` sleeps 1 s before the first subscribe, so that tables
    (and topics agents add when they first iterate) declared late are in it. The worker
    declares no table and adds its topics to ``app.topics`` before the app starts (an agent
    reading a topic of its own must do the same), yet every start, and every session after
    a crash, waited that second before joining the group. With a table declared it waits as
    faust does."""
    from faust.tables import TableManager

    class NoTableWait(TableManager):  # type: ignore[misc]
        async def on_start(self) -> None:
            if self.data:
                await super().on_start()
            elif not self.should_stop:
                await self._update_channels()
                await self.recovery.start()

    return NoTableWait


class KafkaWorker:
    """``callpulse worker``: see the module docstring for the lifecycle."""

    def __init__(
        self,
        config: Config,
        pii_key: bytes,
        options: WorkerOptions,
        on_stored: Callable[[list[Message]], None] | None = None,
        start_services: StartServices | None = None,
        on_broker_retry: Callable[[int, str, float], None] | None = None,
    ) -> None:
        """``on_stored(messages)`` runs on the engine thread after each batch is stored;
        ``start_services(engine, config, serve)`` attaches the boards and /metrics (the CLI
        passes its wiring in; without it the worker only stores); ``on_broker_retry(attempt,
        reason, delay)`` is told of each failed attempt to reach the broker at start."""
        self.config = config
        self.on_broker_retry = on_broker_retry or _log_broker_retry
        self.start_services = start_services
        self.on_stored = on_stored
        self.pii_key = pii_key
        self.options = options
        self.settings = config.kafka
        self.topics = routed_topic_names(self.settings)
        self.routed = self.topics if self.settings.route_by_queue else None
        self.summary = WorkerSummary()
        self._stop = threading.Event()
        self._thread = EngineThread()
        self.engine: Engine | None = None
        self.sink: OffsetSink | None = None
        self.services: Services | None = None  # while running
        self._fatal: BaseException | None = None
        self._crash: BaseException | None = None  # a forward that failed: the session restarts
        self.partitions: dict[str, int] = {}  # per topic kind (route_by_queue), read at start

    def stop(self) -> None:
        """Ask the worker to stop after the batch in hand (any thread)."""
        self._stop.set()

    # -- engine thread -------------------------------------------------------

    def _open(self) -> Services | None:
        self.engine = Engine.open(self.config, self.pii_key)
        self.engine.store.set_threads(self.settings.duckdb_threads)
        self.sink = OffsetSink(
            self.engine,
            self.topics.values(),
            self.on_stored,
            queue_log_topics=[self.topics[QUEUE_LOG]],
            timezone=self.config.timezone,
            routed=self.routed,
        )
        if self.routed is not None:
            self.engine.ownership = NOTHING  # until the group assigns partitions
        if self.start_services is None:
            return None
        return self.start_services(self.engine, self.config, self.options.serve)

    def _close(self, services: Services | None) -> None:
        try:
            if services is not None:
                services.refresher.refresh_now()
                services.close()
        finally:
            if self.engine is not None:
                self.engine.close()

    # -- run -----------------------------------------------------------------

    def run(self, on_progress: Callable[[WorkerSummary], None] | None = None) -> WorkerSummary:
        started = time.monotonic()
        deadline = started + self.options.duration_s if self.options.duration_s else None
        try:
            services = self._thread.call(self._open)
        except BaseException:  # a database in use or damaged, a port taken: close what opened
            try:
                self._thread.call(self._close, None)
            finally:
                self._thread.close()
            raise
        self.services = services
        # What start-up made (imports, the engine, the services) lives as long as the
        # process: frozen, it is no longer scanned by every full collection, whose pauses
        # would otherwise stall the engine thread in the middle of a steady stream.
        gc.collect()
        gc.freeze()
        try:
            wait_for_broker(self.settings, self.on_broker_retry, self._stop)
            if self.routed is not None:
                self.partitions = check_copartitioned(ensure_routed_topics(self.settings), self.topics)
            while not self._stop.is_set() and (deadline is None or time.monotonic() < deadline):
                self.summary.sessions += 1
                crashed = self._session(deadline, on_progress)
                if self._fatal is not None:
                    raise self._fatal
                if not crashed:
                    break
                log.warning(
                    "faust session %d ended with a crash: %r; restarting from the offsets in DuckDB",
                    self.summary.sessions,
                    crashed,
                )
                self._stop.wait(self.options.restart_backoff_s)
        finally:
            try:
                self._thread.call(self._close, services)
            finally:
                self._thread.close()
            self.summary.seconds = time.monotonic() - started
        return self.summary

    def _session(self, deadline: float | None, on_progress: Callable[[WorkerSummary], None] | None) -> Any:
        """One faust app on a fresh event loop; returns the crash reason, or None."""
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        datadir = faust_datadir()
        try:
            return loop.run_until_complete(self._session_async(deadline, datadir, on_progress))
        finally:
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()
                asyncio.set_event_loop(None)
                shutil.rmtree(datadir, ignore_errors=True)

    async def _session_async(
        self, deadline: float | None, datadir: str, on_progress: Callable[[WorkerSummary], None] | None
    ) -> Any:
        import faust
        from faust.types import TP

        feed = BatchFeed(self.settings.batch_size, self.settings.batch_within_s)
        app = build_app(self.settings, self.options, datadir)
        app.transport = batching_transport(feed, self.settings.fetch_wait_s)(
            app.conf.broker_consumer, app
        )  # before any topic
        ours = set(self.topics.values())
        summary = self.summary
        sink = self.sink
        assert sink is not None
        producer = producer_for(self.settings) if self.routed is not None else None
        commits = StoredCommits(app)
        self._crash = None

        async def handle(batches: list[list[Message]]) -> None:
            try:
                await store(batches)
            finally:
                feed.done()

        async def store(batches: list[list[Message]]) -> None:
            if not batches or self._stop.is_set() or self._crash is not None:
                return
            if producer is not None:
                forwards = await self._thread.run(sink.plan, batches)
                try:
                    await send(producer, forwards)
                except Exception as exc:  # noqa: BLE001 - the broker away: a new session retries the batch
                    self._crash = exc
                    return
            try:
                stored, skipped = await self._thread.run(sink.handle_all, batches)
            except Exception as exc:  # a store failure is a bug or a broken disk: stop loudly
                self._fatal = exc
                self._stop.set()
                raise
            summary.messages += stored
            summary.skipped += skipped
            summary.batches += 1 if stored else 0
            commits.add(batches)
            if on_progress is not None:
                on_progress(summary)
            if self.options.max_events and summary.messages >= self.options.max_events:
                self._stop.set()

        for topic in self.topics.values():
            app.topics.add(app.topic(topic, value_serializer="raw", key_serializer="raw"))
        feed.channel = app.channel(maxsize=1)
        app.agent(feed.channel, name="callpulse.store", concurrency=1)(store_agent(handle))

        @app.on_partitions_revoked.connect  # type: ignore[misc]
        async def on_revoked(sender: Any, revoked: set[Any], **_: Any) -> None:
            if self.routed is not None and self.engine is not None:
                # Every member lets go before any is assigned: no queue is exported twice.
                self.engine.ownership = NOTHING

        @app.on_partitions_assigned.connect  # type: ignore[misc]
        async def on_assigned(sender: Any, assigned: set[Any], **_: Any) -> None:
            generation = app.consumer_generation_id
            mine = sorted((tp.topic, tp.partition) for tp in assigned if tp.topic in ours)
            if self.routed is not None:
                await self._claim(app, mine)
            positions = await self._thread.run(sink.positions, mine)
            offsets = {TP(t, p): o for (t, p), o in positions.items()}
            log.info("resuming from DuckDB offsets: %s", offsets)
            # Applied by the drain once faust resumed (BatchFeed.drain); Kafka's committed
            # offsets follow each stored batch (StoredCommits), for lag monitors only
            # (faust-streaming#606: DuckDB's offsets are what the worker resumes from).
            feed.seeks = {generation: offsets}

        worker = faust.Worker(
            app,
            loop=asyncio.get_running_loop(),
            quiet=True,
            daemon=False,
            override_logging=False,
            redirect_stdouts=False,
            loglevel="WARNING",
        )
        if producer is not None:
            await producer.start()
        await worker.start()
        idle_tick = time.monotonic()
        try:
            while not self._stop.is_set():
                if time.monotonic() - idle_tick >= 1.0:
                    idle_tick = time.monotonic()
                    if on_progress is not None:
                        on_progress(summary)
                    if self.services is not None:  # publish a batch the refresh cadence skipped
                        await self._thread.run(self.services.refresher.tick)
                if deadline is not None and time.monotonic() >= deadline:
                    break
                if app.crashed or worker.crashed:
                    return app.crash_reason or worker.crash_reason or RuntimeError("faust crashed")
                if self._crash is not None:
                    return self._crash
                if worker.should_stop:  # SIGTERM / SIGINT through faust's handlers
                    self._stop.set()
                    break
                await asyncio.sleep(0.1)
            return None
        finally:
            try:
                try:
                    await commits.close()  # the last stored batch's offsets, while the consumer runs
                finally:
                    await worker.stop()
            finally:
                feed.close()
                await commits.close()  # a batch the stop let finish
                if producer is not None:
                    await producer.stop()

    async def _claim(self, app: Any, mine: list[tuple[str, int]]) -> None:
        """Take the queues and agents of the assigned partitions (``route_by_queue``): the
        exports show them from now on, and ``worker_partitions`` records the claim."""
        names = self.topics
        count = self.partitions
        held = {kind: sorted(p for t, p in mine if t == names[kind]) for kind in ("calls", BY_QUEUE)}
        if held["calls"] != held[BY_QUEUE]:
            self._fatal = OperatorError(
                f"kafka: assigned partitions {held['calls']} of {names['calls']} but {held[BY_QUEUE]} of "
                f"{names[BY_QUEUE]}; route_by_queue needs faust's co-partitioning assignor: every worker of group "
                f"{self.settings.group} must run with [kafka] route_by_queue"
            )
            self._stop.set()
            return
        assert self.engine is not None
        self.engine.ownership = Ownership(
            frozenset(mine), names["calls"], count["calls"], names["agents"], count["agents"]
        )
        claim = [(source_name(t), p) for t, p in mine]
        generation = int(app.consumer_generation_id or 0)
        await self._thread.run(self.engine.store.save_assignment, self.settings.worker_id, generation, claim)
        log.info("worker %s holds %s (generation %d)", self.settings.worker_id, mine, generation)
