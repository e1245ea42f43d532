"""The Kafka agent's logic without a broker: faust's agent.test_context(), batch decoding,
offsets attached, the seek/skip rules as pure functions."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from pipeline.core.config import KafkaSettings
from pipeline.core.records import RawBatch, SourceOffset
from pipeline.ingest.sources.kafka import (
    Message,
    MicroBatcher,
    QueueLogDecoder,
    batch_from_messages,
    batch_offsets,
    fresh,
    route,
    route_lines,
    route_queue_log,
    seek_positions,
    topic_names,
)
from pipeline.ingest.worker import BatchFeed, OffsetSink, StoredCommits, stale_datadirs, store_agent
from tests.helpers import engine

CALL = {"type": "call", "event": "offered", "call_id": "c1", "queue": "billing", "at": "2026-03-02T09:00:00Z"}


def msg(offset: int, value: bytes | None, partition: int = 0, topic: str = "p.calls") -> Message:
    return Message(topic, partition, offset, value)


def test_the_store_agent_hands_each_micro_batch_to_the_handler() -> None:
    import faust

    # The broker is never contacted: test_context feeds the agent from an in-memory channel.
    app = faust.App(
        "unit-agent",
        broker="kafka://127.0.0.1:9",
        value_serializer="raw",
        store="memory://",
        web_enabled=False,
        autodiscover=False,
    )
    got: list[list[list[Message]]] = []
    batcher = MicroBatcher(batch_size=3, within_s=0.2)
    values = [json.dumps({**CALL, "call_id": f"c{i}"}).encode() for i in range(5)]
    batcher.add([msg(i, v) for i, v in enumerate(values[:3])])
    full = batcher.take(now=0.0)
    batcher.add([msg(3, values[3]), msg(4, values[4]), msg(0, b"{}", topic="p.agents")])
    rest = batcher.take(now=0.0)

    async def main() -> None:
        enough = asyncio.Condition()

        async def handler(batches: list[list[Message]]) -> None:
            async with enough:
                got.append(batches)
                enough.notify_all()

        agent = app.agent(app.channel(), name="unit-store", concurrency=1)(store_agent(handler))
        async with agent.test_context() as ctx:
            await ctx.put(full)
            await ctx.put(rest)
            # put() returns before the agent ran: wait for the condition, not a sleep.
            async with enough:
                await asyncio.wait_for(enough.wait_for(lambda: len(got) == 2), timeout=10)

    asyncio.run(main())
    assert [[len(t) for t in b] for b in got] == [[3], [2, 1]]  # one list per topic
    flat = [m for t in got[0] + got[1][:1] for m in t]
    assert [m.offset for m in flat] == [0, 1, 2, 3, 4]
    batch = batch_from_messages("p.calls", flat)
    assert batch.frame.get_column("call_id").to_list() == [f"c{i}" for i in range(5)]
    assert batch.frame.get_column("_pos").to_list() == [f"p.calls:0:{i}" for i in range(5)]
    assert batch.offsets == [SourceOffset("kafka:p.calls", 0, 4)]


def test_micro_batches_are_bounded_by_size_and_time_and_grow_while_the_store_is_busy() -> None:
    b = MicroBatcher(batch_size=4, within_s=0.5)
    assert not b.due(now=100.0, room=True) and b.wait_s(100.0) == 1.0  # nothing pending
    b.add([msg(0, b"{}")])
    assert b.due(now=100.0, room=True)  # the first message after a quiet spell goes at once
    assert [[m.offset for m in t] for t in b.take(now=100.0)] == [[0]]
    b.add([msg(1, b"{}")])
    assert not b.due(now=100.4, room=True)  # at most one batch per within_s ...
    assert b.wait_s(100.4) == pytest.approx(0.1)  # ... so a fetch may block until it is due
    assert b.due(now=100.5, room=True)  # the time bound, counted from the last take
    assert not b.due(now=100.9, room=False)  # the store is busy: keep collecting ...
    b.add([msg(2, b"{}"), msg(3, b"{}"), msg(4, b"{}", topic="p.agents")])
    assert b.due(now=100.9, room=False)  # ... up to the size bound
    taken = b.take(now=100.9)
    assert [[(m.topic, m.offset) for m in t] for t in taken] == [
        [("p.calls", 1), ("p.calls", 2), ("p.calls", 3)],
        [("p.agents", 4)],
    ]
    assert b.count == 0 and not b.due(now=200.0, room=True)
    # The bound counts from the last take, not from a message's arrival: one arriving at
    # 101.3 (say, while a store runs) is due at 101.4, not half a second later.
    b.add([msg(5, b"{}")])
    assert not b.due(now=101.3, room=False) and not b.due(now=101.3, room=True)
    assert b.due(now=101.4, room=True)
    b.clear()  # a rebalance drops what is pending
    assert b.count == 0 and b.take(now=102.0) == []


class _Channel:
    """The agent's channel, as far as the feed uses it: what was sent, in order; while
    ``room`` is clear a send waits, as it does on a channel that holds a batch."""

    def __init__(self) -> None:
        self.sent: list[list[list[Message]]] = []
        self.room = asyncio.Event()
        self.room.set()

    async def send(self, value: list[list[Message]]) -> None:
        await self.room.wait()
        self.sent.append(value)


def test_a_finished_batch_sends_what_collected_meanwhile_without_waiting_for_a_fetch() -> None:
    feed = BatchFeed(batch_size=10, within_s=0.0)
    channel = _Channel()
    feed.channel = channel
    feed._current = lambda: True  # the consumer's generation is the one sought, flow on

    def offsets() -> list[list[list[int]]]:
        return [[[m.offset for m in t] for t in b] for b in channel.sent]

    async def sent() -> list[list[list[int]]]:
        await asyncio.gather(*feed._sending)
        return offsets()

    async def main() -> None:
        feed.queued = 1  # a batch being stored; two messages arrived meanwhile
        feed.batcher.add([msg(0, b"{}"), msg(1, b"{}")])
        feed.done()
        assert await sent() == [[[0, 1]]]
        assert feed.queued == 1 and feed.batcher.count == 0
        # A full batch waits in the channel behind the one just stored: nothing is sent.
        feed.queued = 2
        feed.batcher.add([msg(2, b"{}")])
        feed.done()
        assert await sent() == [[[0, 1]]] and feed.queued == 1
        # During a rebalance what is pending is not sent (the drain drops it).
        feed.queued = 1
        feed._current = lambda: False
        feed.done()
        assert await sent() == [[[0, 1]]] and feed.queued == 0 and feed.batcher.count == 1
        # After a rebalance ``queued`` can say 0 while the channel still holds a batch: the
        # agent (which calls done) goes on to take it instead of waiting on itself.
        feed._current = lambda: True
        channel.room.clear()
        feed.done()  # returns: the send waits on its own task
        await asyncio.sleep(0)  # let the send's task run up to its wait
        assert offsets() == [[[0, 1]]] and len(feed._sending) == 1
        channel.room.set()  # the agent took the batch in the channel
        assert await sent() == [[[0, 1]], [[2]]]

    asyncio.run(main())


def test_stored_offsets_are_committed_one_commit_at_a_time_and_only_forward() -> None:
    from faust.types import TP

    class Consumer:
        def __init__(self) -> None:
            self.commits: list[dict[Any, int]] = []
            self.release = asyncio.Event()

        async def _commit(self, offsets: dict[Any, int]) -> None:
            self.commits.append(offsets)
            await self.release.wait()  # the broker answers when the test says so

    class App:
        consumer = Consumer()

    async def main() -> None:
        commits = StoredCommits(App())
        consumer = App.consumer
        commits.add([[msg(4, b"{}"), msg(5, b"{}")]])
        await asyncio.sleep(0)  # the commit task starts and waits for the broker
        assert consumer.commits == [{TP("p.calls", 0): 6}]
        # Stored while that commit is in flight: one commit of the highest offsets after it.
        commits.add([[msg(6, b"{}")], [msg(0, b"{}", topic="p.agents")]])
        commits.add([[msg(9, b"{}"), msg(2, b"{}", partition=1)]])
        consumer.release.set()
        await commits.close()
        assert consumer.commits == [
            {TP("p.calls", 0): 6},
            {TP("p.calls", 0): 10, TP("p.agents", 0): 1, TP("p.calls", 1): 3},
        ]

    asyncio.run(main())


def test_stopping_drops_a_commit_the_broker_never_answers() -> None:
    class Consumer:
        async def _commit(self, offsets: dict[Any, int]) -> None:
            await asyncio.Event().wait()  # a broker that is away

    class App:
        consumer = Consumer()

    async def main() -> None:
        commits = StoredCommits(App())
        commits.add([[msg(4, b"{}")]])
        # returns instead of waiting for the broker (the outer bound only fails a regression)
        await asyncio.wait_for(commits.close(timeout_s=0.05), 30)
        assert commits._task is not None and commits._task.cancelled()

    asyncio.run(main())


def test_a_micro_batch_of_several_topics_is_stored_in_one_process_call() -> None:
    eng = engine()
    try:
        sink = OffsetSink(eng, ["p.calls", "p.agents"])
        agent = {"type": "agent", "agent_id": "a1", "state": "ready", "at": "2026-03-02T09:00:00Z"}
        calls = [msg(0, json.dumps(CALL).encode()), msg(1, b"junk")]
        agents = [msg(0, json.dumps(agent).encode(), topic="p.agents")]
        assert sink.handle_all([calls, agents]) == (3, 0)
        assert eng.totals.batches == 1
        assert eng.store.offsets("kafka:p.calls") == {0: 1} and eng.store.offsets("kafka:p.agents") == {0: 0}
        sources = eng.store.con.execute(
            "SELECT (SELECT source FROM call_events), (SELECT source FROM agent_events),"
            " (SELECT source || ' ' || position FROM dead_letters)"
        ).fetchall()
        assert sources == [("kafka:p.calls", "kafka:p.agents", "kafka:p.calls p.calls:0:1")]
        assert sink.handle_all([calls, agents]) == (0, 3)  # redelivered: nothing new
    finally:
        eng.close()


def test_bad_values_are_dead_lettered_with_their_position() -> None:
    good = json.dumps(CALL).encode()
    messages = [
        msg(10, good),
        msg(11, b"not json {"),
        msg(12, b""),
        msg(13, None),
        msg(14, b"[1,2]"),
        msg(15, b"{" + b'"x":"' + b"y" * 2_000_000 + b'"}'),
        msg(16, b'{"type":"call",\n"call_id":"m"}'),
        msg(17, b'{"a":1}\n{"b":2}'),
        msg(3, good.replace(b"c1", b"c9"), partition=1),
    ]
    batch = batch_from_messages("p.calls", messages)
    reasons = {d.position: d.reason for d in batch.dead}
    assert reasons["p.calls:0:11"].startswith("malformed JSON")
    assert reasons["p.calls:0:12"] == reasons["p.calls:0:13"] == "empty message"
    assert reasons["p.calls:0:14"] == "not a JSON object"
    assert reasons["p.calls:0:15"].startswith("message too large")
    assert reasons["p.calls:0:17"].startswith("malformed JSON")
    assert all(len(d.raw) < 20_000 for d in batch.dead)  # a huge message is clipped
    assert sorted(batch.frame.get_column("_pos").to_list()) == ["p.calls:0:10", "p.calls:0:16", "p.calls:1:3"]
    assert batch.size == len(messages)
    assert batch.offsets == [SourceOffset("kafka:p.calls", 0, 17), SourceOffset("kafka:p.calls", 1, 3)]
    assert batch_offsets([]) == []


def test_batch_offsets_carry_the_highest_known_high_watermark() -> None:
    messages = [
        Message("p.calls", 0, 5, b"{}", high_watermark=9),
        Message("p.calls", 0, 7, b"{}", high_watermark=12),  # a later fetch knew more
        Message("p.calls", 0, 6, b"{}"),
        Message("p.calls", 1, 3, b"{}"),  # never known
    ]
    assert batch_offsets(messages) == [SourceOffset("kafka:p.calls", 0, 7, 12), SourceOffset("kafka:p.calls", 1, 3)]


def test_high_watermark_from_the_consumer_or_none() -> None:
    from pipeline.ingest.worker import high_watermark

    class Consumer:
        def __init__(self, hw: object) -> None:
            self.hw = hw

        def highwater(self, tp: object) -> object:
            if isinstance(self.hw, Exception):
                raise self.hw
            return self.hw

    assert high_watermark(Consumer(42), ("t", 0)) == 42
    assert high_watermark(Consumer(None), ("t", 0)) is None  # no fetch response yet
    assert high_watermark(Consumer(-1), ("t", 0)) is None
    assert high_watermark(Consumer(RuntimeError("consumer not started")), ("t", 0)) is None


@pytest.mark.parametrize(
    ("offsets", "stored", "kept"),
    [
        ([0, 1, 2], {}, [0, 1, 2]),  # nothing stored: everything is new
        ([0, 1, 2], {("t", 0): 1}, [2]),  # redelivery after a crash
        ([5, 6], {("t", 0): 9}, []),  # committed offset lagging DuckDB (faust-streaming#606)
        ([3, 4], {("t", 1): 9}, [3, 4]),  # another partition's offset doesn't matter
    ],
)
def test_fresh_skips_what_duckdb_holds(offsets: list[int], stored: dict[tuple[str, int], int], kept: list[int]) -> None:
    assert [m.offset for m in fresh([msg(o, b"{}", topic="t") for o in offsets], stored)] == kept


def test_seek_positions_resume_after_the_stored_offset() -> None:
    stored = {("t", 0): 41, ("t", 2): 0, ("u", 0): 7}
    assert seek_positions([("t", 0), ("t", 1), ("t", 2)], stored) == {("t", 0): 42, ("t", 1): 0, ("t", 2): 1}
    assert seek_positions([], stored) == {}


def test_offset_sink_stores_offsets_with_rows_and_skips_redelivery() -> None:
    eng = engine()
    try:
        sink = OffsetSink(eng, ["p.calls"])
        first = [msg(0, json.dumps(CALL).encode()), msg(1, b"junk")]
        assert sink.handle(first) == (2, 0)
        assert eng.store.offsets("kafka:p.calls") == {0: 1}
        again = [*first, msg(2, json.dumps({**CALL, "call_id": "c2"}).encode())]
        assert sink.handle(again) == (1, 2)  # only offset 2 is new
        assert OffsetSink(eng, ["p.calls"]).stored == {("p.calls", 0): 2}  # read back from DuckDB
        counts = eng.store.con.execute(
            "SELECT (SELECT count(*) FROM call_events), (SELECT count(*) FROM dead_letters)"
        ).fetchone()
        assert counts == (2, 1)
    finally:
        eng.close()


def test_routing_by_type_and_key() -> None:
    topics = topic_names(KafkaSettings(topic_prefix="x."))
    assert route(CALL, topics) == ("x.calls", b"billing")
    assert route({"type": "cdr", "queue": "sales"}, topics) == ("x.calls", b"sales")
    assert route({"type": "agent", "agent_id": "a7"}, topics) == ("x.agents", b"a7")
    assert route({"type": "qa", "call_id": "c3"}, topics) == ("x.qa", b"c3")
    unknown: list[Any] = [{"type": "fax"}, [1], None, "text"]
    assert all(route(r, topics) == ("x.calls", None) for r in unknown)
    lines = [b'{"type":"agent","agent_id":"a1"}\n', b"\n", b"garbage\n"]
    assert [(r.topic, r.key, r.value) for r in route_lines(lines, topics)] == [
        ("x.agents", b"a1", b'{"type":"agent","agent_id":"a1"}'),
        ("x.calls", None, b"garbage"),
    ]


# -- the queue_log topic: raw Asterisk lines, one stateful parser per partition ------------

QUEUE_LOG_FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "adapters" / "pipeline_queue_log.txt"
QL = "p.queue_log"
QUEUE_LOG_LINES = [
    b"1709542801|NONE|support|SIP/2002|ADDMEMBER|",
    b"1709542810|1709542810.1|support|NONE|ENTERQUEUE||+15551230001|1",
    b"1709542825|1709542810.1|support|SIP/2002|CONNECT|15|1709542820.7|4\r\n",
    b"garbage from a bad cable",
    b"1709542900|1709542810.1|support|SIP/2002|COMPLETECALLER|15|75|1",
    b"1709542901|1709542901.2|support|NONE|FROBNICATE|1",
    b"",
]


def records_of(batch: RawBatch) -> list[tuple[str | None, ...]]:
    return batch.frame.select("_pos", "type", "event", "state", "call_id", "agent_id", "at", "talk_s").rows()


def test_queue_log_batch_makes_records_and_dead_letters_at_topic_partition_offset() -> None:
    messages = [msg(100 + i, line, topic=QL) for i, line in enumerate(QUEUE_LOG_LINES)]
    batch = QueueLogDecoder().batch(QL, messages, {})
    assert batch.source == "kafka:p.queue_log"
    assert records_of(batch) == [
        ("p.queue_log:0:100", "agent", None, "login", None, "SIP/2002", "1709542801", None),
        ("p.queue_log:0:100", "agent", None, "ready", None, "SIP/2002", "1709542801", None),
        ("p.queue_log:0:101", "call", "offered", None, "1709542810.1", None, "1709542810", None),
        ("p.queue_log:0:102", "call", "answered", None, "1709542810.1", "SIP/2002", "1709542825", None),
        ("p.queue_log:0:102", "agent", None, "busy", None, "SIP/2002", "1709542825", None),
        ("p.queue_log:0:104", "call", "ended", None, "1709542810.1", "SIP/2002", "1709542900", "75"),
        ("p.queue_log:0:104", "agent", None, "ready", None, "SIP/2002", "1709542900", None),
    ]
    dead = {d.position: d.reason for d in batch.dead}
    assert dead == {
        "p.queue_log:0:103": "not a queue_log line: 1 fields, need 5+",
        "p.queue_log:0:105": "unknown queue_log event 'FROBNICATE'",
        "p.queue_log:0:106": "empty message",
    }
    assert {d.source for d in batch.dead} == {"kafka:p.queue_log"}
    assert batch.size == 10 and batch.offsets == [SourceOffset("kafka:p.queue_log", 0, 106)]


def test_queue_log_parsers_are_per_partition_and_restart_when_the_partition_moved_on() -> None:
    dec = QueueLogDecoder()
    enter = b"1709542810|c1|support|NONE|ENTERQUEUE||+15551230001|1"
    connect = b"1709542825|c1|support|A1|CONNECT|15|x|4"
    # Partition 1 never saw c1's ENTERQUEUE: its parser rebuilds the offer from the wait.
    first = dec.batch(QL, [msg(0, enter, 0, QL), msg(0, connect, 1, QL)], {})
    assert [r[:3] for r in records_of(first)] == [
        ("p.queue_log:0:0", "call", "offered"),
        ("p.queue_log:1:0", "call", "offered"),
        ("p.queue_log:1:0", "call", "answered"),
        ("p.queue_log:1:0", "agent", None),
    ]
    # Partition 0 continues where its parser stopped: state kept, the offer is not rebuilt.
    again = dec.batch(QL, [msg(1, connect, 0, QL)], {(QL, 0): 0, (QL, 1): 0})
    assert [r[2] for r in records_of(again)] == ["answered", None]
    # Another worker stored offsets 2..9 meanwhile (a rebalance): a fresh parser, as after a restart.
    parser = dec.tails[(QL, 0)].parser
    dec.batch(QL, [msg(10, connect, 0, QL)], {(QL, 0): 9})
    assert dec.tails[(QL, 0)].parser is not parser and dec.tails[(QL, 0)].last == 10


def test_queue_log_site_time_zone_for_text_timestamps() -> None:
    line = b"2024-03-04 10:00:00|c1|support|NONE|ENTERQUEUE||+15551230001|1"
    batch = QueueLogDecoder("Europe/Berlin").batch(QL, [msg(0, line, topic=QL)], {})
    assert batch.frame.get_column("at").to_list() == ["2024-03-04T10:00:00+01:00"]


QUEUE_LOG_TABLES = [
    "SELECT * FROM calls ORDER BY call_id, queue",
    "SELECT * FROM kpi_queue_interval ORDER BY ALL",
    "SELECT * EXCLUDE (queues) FROM agent_states ORDER BY ALL",
    "SELECT count(*), count(DISTINCT position) FROM dead_letters",
    "SELECT count(*) FROM call_events",
    "SELECT count(*) FROM agent_events",
]


def queue_log_tables(eng: Any) -> list[list[tuple[Any, ...]]]:
    return [eng.store.con.execute(q).fetchall() for q in QUEUE_LOG_TABLES]


def test_a_restart_at_any_line_counts_nothing_twice_and_changes_no_kpi() -> None:
    """A new process starts with fresh parsers at DuckDB's offset + 1, from the agents'
    state saved with that offset. Restart after every line of the fixture in turn."""
    lines = [line for line in QUEUE_LOG_FIXTURE.read_bytes().splitlines() if line.strip()]
    messages = [msg(i, line, topic=QL) for i, line in enumerate(lines)]
    eng = engine()
    try:
        sink = OffsetSink(eng, [QL], queue_log_topics=[QL])
        for i in range(0, len(messages), 4):  # micro-batches of 4
            sink.handle(messages[i : i + 4])
        whole = queue_log_tables(eng)
    finally:
        eng.close()
    assert whole[3] == [(5, 5)] and whole[4][0][0] > 0
    for cut in range(1, len(messages)):
        eng = engine()
        try:
            OffsetSink(eng, [QL], queue_log_topics=[QL]).handle(messages[:cut])
            restarted = OffsetSink(eng, [QL], queue_log_topics=[QL])  # the new process
            assert restarted.handle(messages) == (len(messages) - cut, cut)  # redelivered: skipped
            assert queue_log_tables(eng) == whole, f"restart after line {cut}"
        finally:
            eng.close()


def test_route_queue_log_keys_every_line_by_server() -> None:
    topics = topic_names(KafkaSettings(topic_prefix="x."))
    assert topics["queue_log"] == "x.queue_log" and len(topics) == 4
    lines = [b"1|c|q|NONE|ENTERQUEUE||1|1\n", b"\n", b"  \r\n", b"junk\r\n"]
    assert [(r.topic, r.key, r.value) for r in route_queue_log(lines, topics, "pbx-1")] == [
        ("x.queue_log", b"pbx-1", b"1|c|q|NONE|ENTERQUEUE||1|1"),
        ("x.queue_log", b"pbx-1", b"junk"),
    ]


def agent_events_after_restarts(lines: list[bytes], cut: int | None) -> list[tuple[int, str, str | None, Any]]:
    """A1's stored agent events (epoch, state, reason, queues) after a worker stored the
    first ``cut`` lines and a new worker process (a new OffsetSink and parser, the same
    database) was given every line; ``cut`` None: one worker, no restart."""
    messages = [msg(i, line, topic=QL) for i, line in enumerate(lines)]
    eng = engine()
    try:
        if cut is not None:
            OffsetSink(eng, [QL], queue_log_topics=[QL]).handle(messages[:cut])
        OffsetSink(eng, [QL], queue_log_topics=[QL]).handle(messages)
        rows = eng.store.con.execute(
            "SELECT epoch(ts)::BIGINT, state, reason, queues FROM agent_events WHERE agent_id = 'A1' ORDER BY ts, state"
        ).fetchall()
    finally:
        eng.close()
    return [tuple(r) for r in rows]


PAUSE_IN_CALL = [
    b"100|NONE|support|A1|ADDMEMBER|",
    b"110|c1|support|NONE|ENTERQUEUE||123|1",
    b"120|c1|support|A1|CONNECT|10|x|1",
    b"130|NONE|support|A1|PAUSE|lunch",  # during the call: nothing emitted yet
    b"200|c1|support|A1|COMPLETEAGENT|10|80|1",
    b"210|NONE|support|A1|UNPAUSE|",
]


@pytest.mark.parametrize("cut", [None, *range(1, len(PAUSE_IN_CALL))])
def test_a_restart_keeps_a_pause_taken_during_a_call(cut: int | None) -> None:
    """By hand: the pause taken at 130 while A1 is on c1 starts when the call ends (200)."""
    assert agent_events_after_restarts(PAUSE_IN_CALL, cut) == [
        (100, "login", None, ["support"]),
        (100, "ready", None, None),
        (120, "busy", None, None),
        (200, "not_ready", "lunch", None),
        (210, "ready", None, None),
    ]


TWO_QUEUES = [
    b"100|NONE|support|A1|ADDMEMBER|",
    b"101|NONE|sales|A1|ADDMEMBER|",
    b"110|NONE|support|A1|REMOVEMEMBER|",  # still a member of sales: not logged out
    b"150|NONE|sales|A1|PAUSE|meeting",
    b"160|NONE|sales|A1|PAUSE|meeting",  # a repeat: emitted once
    b"170|NONE|sales|A1|REMOVEMEMBER|",
]


@pytest.mark.parametrize("cut", [None, *range(1, len(TWO_QUEUES))])
def test_a_restart_keeps_membership_of_several_queues_and_repeated_states(cut: int | None) -> None:
    assert agent_events_after_restarts(TWO_QUEUES, cut) == [
        (100, "login", None, ["support"]),
        (100, "ready", None, None),
        (101, "login", None, ["sales", "support"]),
        (101, "ready", None, None),
        (150, "not_ready", "meeting", None),
        (170, "logout", None, None),
    ]


@pytest.mark.parametrize(("threads", "expected"), [(1, 1), (0, None)])
def test_the_worker_opens_duckdb_with_the_configured_threads(
    tmp_path: Path, threads: int, expected: int | None
) -> None:
    """``kafka.duckdb_threads`` is applied when the worker opens the store; 0 leaves DuckDB's
    own default (one per core) untouched."""
    import duckdb

    from pipeline.core.config import Config
    from pipeline.ingest.worker import KafkaWorker, WorkerOptions

    default = duckdb.connect().execute("SELECT current_setting('threads')").fetchall()[0][0]
    cfg = Config(db=tmp_path / "w.duckdb", kafka=KafkaSettings(duckdb_threads=threads))
    worker = KafkaWorker(cfg, b"k", WorkerOptions(serve=False))
    services = worker._thread.call(worker._open)
    try:
        assert worker.engine is not None
        got = worker.engine.store.con.execute("SELECT current_setting('threads')").fetchall()[0][0]
        assert got == (expected if expected is not None else default)
    finally:
        worker._thread.call(worker._close, services)
        worker._thread.close()


@pytest.mark.parametrize(("fetch_wait_s", "min_bytes", "max_wait_ms"), [(0.1, 64 * 1024, 100), (0.0, 1, 1)])
def test_the_worker_s_fetches_wait_for_a_batch_s_worth_of_bytes(
    kafka_broker: Any, tmp_path: Path, fetch_wait_s: float, min_bytes: int, max_wait_ms: int
) -> None:
    """faust asks aiokafka for fetches answered as soon as one record is there; a steady
    stream of those keeps the consumer's thread busy. The worker's consumer, once started
    on a real broker, fetches with [kafka] fetch_wait and FETCH_MIN_BYTES instead."""
    from pipeline.ingest.worker import FETCH_MIN_BYTES, BatchFeed, WorkerOptions, batching_transport, build_app

    assert FETCH_MIN_BYTES == 64 * 1024

    async def main() -> tuple[int, int]:
        settings = KafkaSettings(bootstrap=kafka_broker.bootstrap, group=f"fetch-{fetch_wait_s}")
        app = build_app(settings, WorkerOptions(), str(tmp_path))
        transport = batching_transport(BatchFeed(10, 0.1), fetch_wait_s)(app.conf.broker_consumer, app)
        consumer = transport.create_consumer(
            callback=lambda _m: None, on_partitions_revoked=lambda _r: None, on_partitions_assigned=lambda _a: None
        )
        aiokafka_consumer = consumer._new_consumer_thread()._create_worker_consumer(transport)
        await aiokafka_consumer.start()
        try:
            fetcher = aiokafka_consumer._fetcher  # what the fetch requests are built from
            return fetcher._fetch_min_bytes, fetcher._fetch_max_wait_ms
        finally:
            await aiokafka_consumer.stop()

    assert asyncio.run(main()) == (min_bytes, max_wait_ms)


def test_the_faust_folders_of_dead_workers_are_the_stale_ones() -> None:
    names = [
        "callpulse-faust-101-a1b2",  # its worker is gone (killed: it could not remove it)
        "callpulse-faust-202-c3d4",  # its worker runs
        "callpulse-faust-x9y8",  # no pid in the name: not one of ours to judge
        "callpulse-bench-kafka-303-e5",  # not a faust folder
    ]
    assert stale_datadirs(names, alive=lambda pid: pid == 202) == ["callpulse-faust-101-a1b2"]


def test_the_table_manager_starts_without_faust_s_second_unless_a_table_is_declared(tmp_path: Path) -> None:
    """faust's table manager sleeps 1 s at start for late tables; the worker has none, so
    its manager registers them (none) and starts recovery at once, and waits as faust does
    once a table is declared."""
    from pipeline.ingest.worker import WorkerOptions, build_app

    async def start(with_table: bool) -> list[str]:
        app = build_app(KafkaSettings(group="g-tables"), WorkerOptions(), str(tmp_path))
        manager = app.tables
        steps: list[str] = []

        async def step(name: str) -> None:
            steps.append(name)

        class Recovery:  # the consumer is not started here: recovery and channels are not under test
            async def start(self) -> None:
                await step("recovery")

        manager.sleep = lambda seconds: step(f"sleep {seconds}")
        manager._update_channels = lambda: step("register")
        manager._recovery = Recovery()
        if with_table:
            manager.data["late"] = object()
        await manager.on_start()
        return steps

    assert asyncio.run(start(with_table=False)) == ["register", "recovery"]
    assert asyncio.run(start(with_table=True)) == ["sleep 1.0", "register", "recovery"]


def test_fetched_records_come_out_as_messages_with_the_fetch_high_watermark() -> None:
    # aiokafka's own record-batch walk (here: skipping offsets below the fetch position), with
    # our Message in place of its ConsumerRecord, for results stored before and after the swap.
    from aiokafka.consumer.fetcher import READ_UNCOMMITTED, PartitionRecords
    from aiokafka.record.default_records import DefaultRecordBatchBuilder
    from aiokafka.record.memory_records import MemoryRecords
    from aiokafka.structs import TopicPartition

    from pipeline.ingest.worker import MessageRecords

    def records(tp: TopicPartition, fetch_offset: int) -> PartitionRecords:
        builder = DefaultRecordBatchBuilder(
            magic=2,
            compression_type=0,
            is_transactional=0,
            producer_id=-1,
            producer_epoch=-1,
            base_sequence=-1,
            batch_size=1 << 20,
        )
        for i in range(5):
            builder.append(i, timestamp=1000 + i, key=None, value=b"v%d" % i, headers=[])
        return PartitionRecords(
            tp, MemoryRecords(bytes(builder.build())), [], fetch_offset, None, None, True, READ_UNCOMMITTED
        )

    class State:
        def __init__(self, highwater: int | None) -> None:
            self.highwater = highwater

    class Assignment:
        def state_value(self, tp: TopicPartition) -> State:
            return State({0: 9, 1: None}[tp.partition])

    class Result:  # the two attributes of aiokafka's FetchResult that MessageRecords reads
        def __init__(self, tp: TopicPartition, fetch_offset: int) -> None:
            self._partition_records = records(tp, fetch_offset)
            self._assignment = Assignment()

    a, b = TopicPartition("p.calls", 0), TopicPartition("p.calls", 1)
    held = MessageRecords({a: Result(a, 3)})
    held[b] = Result(b, 0)
    assert list(held[a]._partition_records) == [
        Message("p.calls", 0, 3, b"v3", 1003, 9),
        Message("p.calls", 0, 4, b"v4", 1004, 9),
    ]
    assert [(m.offset, m.high_watermark) for m in held[b]._partition_records] == [(i, None) for i in range(5)]
    assert all(type(m) is Message for m in records(a, 0)) is False  # aiokafka's own, unswapped
