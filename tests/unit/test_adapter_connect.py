"""Amazon Connect contact records → cdr records (fixture built from the CTR data model)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.core.records import DeadLetter, Parsed
from pipeline.ingest.adapters.connect import ContactRecordParser, parse_contact_records

FIXTURES = Path(__file__).parents[1] / "fixtures" / "adapters"


def lines_of(name: str) -> list[tuple[str, str]]:
    text = FIXTURES.joinpath(name).read_text()
    return [(f"{name}:{i}", line) for i, line in enumerate(text.splitlines(), 1)]


EXPECTED = {
    "c-ans": {
        "type": "cdr",
        "call_id": "c-ans",
        "queue": "BasicQueue",
        "outcome": "answered",
        "offered_at": "2024-03-04T09:00:05+00:00",
        "answered_at": "2024-03-04T09:00:35+00:00",
        "ended_at": "2024-03-04T09:05:05+00:00",
        "agent_id": "jdoe",
        "caller": "+14255550100",
        "talk_s": 240,
        "hold_s": 30,
        "wrap_s": 45,
        "transferred": False,
    },
    "c-abn": {
        "type": "cdr",
        "call_id": "c-abn",
        "queue": "Billing",
        "outcome": "abandoned",
        "offered_at": "2024-03-04T09:10:00+00:00",
        "ended_at": "2024-03-04T09:10:42+00:00",
        "caller": "+14255550101",
    },
    "c-x1": {
        "type": "cdr",
        "call_id": "c-x1",
        "queue": "BasicQueue",
        "outcome": "answered",
        "offered_at": "2024-03-04T09:19:40+00:00",
        "answered_at": "2024-03-04T09:20:10+00:00",
        "ended_at": "2024-03-04T09:24:00+00:00",
        "agent_id": "asmith",
        "caller": "+14255550102",
        "talk_s": 200,
        "hold_s": 0,
        "wrap_s": 20,
        "transferred": True,
    },
    # the transferred-to contact keeps the chain's call id, in its own queue
    "c-x2": {
        "type": "cdr",
        "call_id": "c-x1",
        "queue": "Billing",
        "outcome": "answered",
        "offered_at": "2024-03-04T09:24:00+00:00",
        "answered_at": "2024-03-04T09:24:30+00:00",
        "ended_at": "2024-03-04T09:30:00+00:00",
        "agent_id": "bkim",
        "caller": "+14255550102",
        "talk_s": 300,
        "hold_s": 15,
        "wrap_s": 60,
        "transferred": False,
    },
    # queued, no agent, the flow ended it (voicemail): exited at dequeue
    "c-vm": {
        "type": "cdr",
        "call_id": "c-vm",
        "queue": "Billing",
        "outcome": "exited",
        "offered_at": "2024-03-04T11:00:10+00:00",
        "ended_at": "2024-03-04T11:05:10+00:00",
        "caller": "+14255550104",
    },
}


def test_json_lines() -> None:
    parser = ContactRecordParser("ctr")
    items = list(parser.parse(lines_of("connect_ctrs.jsonl")))
    parsed = [i for i in items if isinstance(i, Parsed)]
    assert [p.record for p in parsed] == list(EXPECTED.values())
    assert [p.position for p in parsed] == [f"connect_ctrs.jsonl:{n}" for n in (1, 2, 3, 4, 7)]
    dead = [(d.position, d.reason) for d in items if isinstance(d, DeadLetter)]
    assert dead == [
        ("connect_ctrs.jsonl:8", "truncated JSON"),
        ("connect_ctrs.jsonl:9", "unreadable time offered_at='yesterday'"),
    ]
    assert parser.stats["skipped:initiation OUTBOUND"] == 1
    assert parser.stats["skipped:channel CHAT"] == 1
    assert (parser.stats["answered"], parser.stats["abandoned"], parser.stats["exited"]) == (
        3,
        1,
        1,
    )


def test_pretty_printed_array_gives_the_same_records() -> None:
    stats: Counter[str] = Counter()
    items = list(parse_contact_records(lines_of("connect_ctrs_array.json"), "ctr", {"stats": stats}))
    assert all(isinstance(i, Parsed) for i in items)
    assert [i.record for i in items] == list(EXPECTED.values())  # type: ignore[union-attr]
    assert items[0].position == "connect_ctrs_array.json:1[0]"
    assert stats["skipped:initiation OUTBOUND"] == 1


def test_concatenated_objects_on_one_line_and_no_queue() -> None:
    line = (
        '{"ContactId":"a","Channel":"VOICE","InitiationMethod":"INBOUND","Queue":null}'
        '{"ContactId":"b","Channel":"VOICE","InitiationMethod":"INBOUND",'
        '"Queue":{"Name":"Q","EnqueueTimestamp":"2024-01-01T00:00:00Z",'
        '"DequeueTimestamp":"2024-01-01T00:00:09Z"},"DisconnectTimestamp":"2024-01-01T00:00:09Z"}'
    )
    parser = ContactRecordParser()
    items = list(parser.parse([("f:1", line)]))
    assert [i.record["outcome"] for i in items] == ["abandoned"]  # type: ignore[union-attr]
    assert parser.stats["skipped:never queued"] == 1


def test_missing_contact_id_and_non_objects_are_dead_letters() -> None:
    items = list(ContactRecordParser().parse([("f:1", '{"Channel":"VOICE"}'), ("f:2", "42")]))
    assert [(i.position, i.reason) for i in items] == [  # type: ignore[union-attr]
        ("f:1", "contact record without ContactId"),
        ("f:2", "not a contact record: JSON int"),
    ]


def test_caller_numbers_are_masked_in_dead_letters() -> None:
    bad = (
        '{"ContactId":"x","Channel":"VOICE","InitiationMethod":"INBOUND",'
        '"CustomerEndpoint":{"Address":"+14255550100"},'
        '"Queue":{"Name":"Q","EnqueueTimestamp":"soon"}}'
    )
    (item,) = ContactRecordParser().parse([("f:1", bad)])
    assert isinstance(item, DeadLetter) and "4255550100" not in item.raw


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.text(alphabet=st.sampled_from('{}[]":,0123456789abcContactIdQueue \n'), max_size=40),
        max_size=10,
    )
)
def test_never_raises(lines: list[str]) -> None:
    for item in ContactRecordParser().parse([(f"f:{i}", x) for i, x in enumerate(lines)]):
        assert isinstance(item, (Parsed, DeadLetter))
