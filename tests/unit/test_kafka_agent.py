"""The Kafka agent's logic without a broker: faust's agent.test_context(), batch decoding,
offsets attached, the seek/skip rules as pure functions."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from pipeline.config import KafkaSettings
from pipeline.records import SourceOffset
from pipeline.sources.kafka import (
    Message,
    batch_from_messages,
    batch_offsets,
    fresh,
    route,
    route_lines,
    seek_positions,
    topic_names,
)
from pipeline.worker import OffsetSink, batch_agent
from tests.helpers import engine

CALL = {"type": "call", "event": "offered", "call_id": "c1", "queue": "billing", "at": "2026-03-02T09:00:00Z"}


def msg(offset: int, value: bytes | None, partition: int = 0, topic: str = "p.calls") -> Message:
    return Message(topic, partition, offset, value)


def test_take_events_batches_reach_the_handler_with_positions() -> None:
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
    topic = app.topic("p.calls", value_serializer="raw")
    got: list[list[Message]] = []

    async def main() -> None:
        enough = asyncio.Condition()

        async def handler(messages: list[Message]) -> None:
            async with enough:
                got.append(messages)
                enough.notify_all()

        agent = app.agent(topic, name="unit-calls", concurrency=1)(batch_agent(handler, 3, 0.2))
        async with agent.test_context() as ctx:
            for i in range(5):
                await ctx.put(json.dumps({**CALL, "call_id": f"c{i}"}).encode())
            # put() returns before the batch is flushed: wait for the condition, not a sleep.
            async with enough:
                await asyncio.wait_for(enough.wait_for(lambda: sum(map(len, got)) >= 5), timeout=10)

    asyncio.run(main())
    assert [len(b) for b in got] == [3, 2]  # batch_size 3, the rest after `within`
    flat = [m for b in got for m in b]
    assert [m.offset for m in flat] == [0, 1, 2, 3, 4]
    assert {m.topic for m in flat} == {"p.calls"}
    batch = batch_from_messages("p.calls", flat)
    assert batch.frame.get_column("call_id").to_list() == [f"c{i}" for i in range(5)]
    assert batch.frame.get_column("_pos").to_list() == [f"p.calls:0:{i}" for i in range(5)]
    assert batch.offsets == [SourceOffset("kafka:p.calls", 0, 4)]


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
