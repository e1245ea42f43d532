"""Mapped CSV/TSV adapter: a hand-made sample in the bank's format, and mapping errors."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from pipeline.core.records import DeadLetter, Parsed
from pipeline.ingest.adapters.mapped import MappingError, load_mapping, parse_mapped, read_mapped_file

FIXTURES = Path(__file__).parents[1] / "fixtures" / "adapters"
SAMPLE = FIXTURES / "bank_sample.tsv"


def test_bank_sample_exact_records() -> None:
    items, stats = read_mapped_file(SAMPLE, "anonymous_bank")
    parsed = [(i.position, i.record) for i in items if isinstance(i, Parsed)]
    assert parsed == [
        # queued and served: answered when the queue says the wait ended (q_exit)
        (
            "bank_sample.tsv:2",
            {
                "type": "cdr",
                "outcome": "answered",
                "call_id": "AA0101-1",
                "queue": "PS",
                "offered_at": "1999-02-03T10:00:06+02:00",
                "answered_at": "1999-02-03T10:00:36+02:00",
                "ended_at": "1999-02-03T10:03:35+02:00",
                "caller": "12345",
                "agent_id": "DORIT",
                "talk_s": 180,
            },
        ),
        # q_start 0:00:00: served at once; customer 0 and NO_SERVER are absent
        (
            "bank_sample.tsv:3",
            {
                "type": "cdr",
                "outcome": "answered",
                "call_id": "AA0101-2",
                "queue": "NW",
                "offered_at": "1999-02-03T11:00:08+02:00",
                "answered_at": "1999-02-03T11:00:08+02:00",
                "ended_at": "1999-02-03T11:00:13+02:00",
                "talk_s": 5,
            },
        ),
        # hung up while waiting, the wait crossing midnight
        (
            "bank_sample.tsv:4",
            {
                "type": "cdr",
                "outcome": "abandoned",
                "call_id": "AA0102-3",
                "queue": "PS",
                "offered_at": "1999-02-10T23:59:29+02:00",
                "ended_at": "1999-02-11T00:00:26+02:00",
                "caller": "777",
            },
        ),
        # served across midnight
        (
            "bank_sample.tsv:7",
            {
                "type": "cdr",
                "outcome": "answered",
                "call_id": "AA0103-6",
                "queue": "PE",
                "offered_at": "1999-02-15T23:58:10+02:00",
                "answered_at": "1999-02-15T23:59:40+02:00",
                "ended_at": "1999-02-16T00:02:00+02:00",
                "caller": "555",
                "agent_id": "TOVA",
                "talk_s": 141,
            },
        ),
        # q_start 0:00:00 after a 23:59:54 VRU entry: q_exit ignored, served at once after midnight
        (
            "bank_sample.tsv:8",
            {
                "type": "cdr",
                "outcome": "answered",
                "call_id": "AA0102-7",
                "queue": "PS",
                "offered_at": "1999-02-16T00:00:26+02:00",
                "answered_at": "1999-02-16T00:00:26+02:00",
                "ended_at": "1999-02-16T00:01:33+02:00",
                "caller": "15696776",
                "agent_id": "AVNI",
                "talk_s": 67,
            },
        ),
    ]
    dead = [(d.position, d.reason) for d in items if isinstance(d, DeadLetter)]
    assert dead == [
        ("bank_sample.tsv:9", "7 columns, header has 17"),
        ("bank_sample.tsv:10", "unknown outcome value 'TRANSFER'"),
        ("bank_sample.tsv:11", "unreadable time in column 'q_start'"),
    ]
    assert stats["skipped:PHANTOM"] == 1
    assert stats["skipped:not offered"] == 1  # HANG in the voice-response unit
    assert (stats["answered"], stats["abandoned"]) == (4, 1)


def test_registry_entry_and_inline_mapping() -> None:
    mapping = {
        "name": "tiny",
        "delimiter": ";",
        "timezone": "Europe/Berlin",
        "fields": {"call_id": "id", "queue": "q", "agent_id": "agent"},
        "absent": {"agent": ["-"]},
        "time": {"format": "%Y-%m-%d %H:%M:%S", "absent": [""]},
        "outcome": {
            "column": "result",
            "map": {"OK": "answered", "LOST": "abandoned", "OUT": "exited"},
        },
        "times": {
            "answered": {"offered_at": "start", "answered_at": "pickup", "ended_at": "end"},
            "abandoned": {"offered_at": "start", "ended_at": "end"},
            "exited": {"offered_at": "start", "ended_at": "end"},
        },
    }
    lines = [
        "id;q;agent;result;start;pickup;end",
        "1;sales;a7;OK;2024-03-31 01:59:50;2024-03-31 03:00:05;2024-03-31 03:04:00",
        "2;sales;-;LOST;2024-10-27 02:30:00;;2024-10-27 02:31:00",
        "3;sales;a7;OUT;2024-03-31 02:30:00;;2024-03-31 03:10:00",
    ]
    stats: Counter[str] = Counter()
    items = list(
        parse_mapped(
            [(f"x:{i}", s) for i, s in enumerate(lines, 1)],
            "x",
            {"mapping": mapping, "stats": stats},
        )
    )
    first, second, third = items
    assert first.record == {  # type: ignore[union-attr]
        "type": "cdr",
        "outcome": "answered",
        "call_id": "1",
        "queue": "sales",
        "agent_id": "a7",
        "offered_at": "2024-03-31T01:59:50+01:00",
        "answered_at": "2024-03-31T03:00:05+02:00",
        "ended_at": "2024-03-31T03:04:00+02:00",
    }
    # the ambiguous autumn hour takes the earlier (summer-time) instant; no agent on lost calls
    assert second.record == {  # type: ignore[union-attr]
        "type": "cdr",
        "outcome": "abandoned",
        "call_id": "2",
        "queue": "sales",
        "offered_at": "2024-10-27T02:30:00+02:00",
        "ended_at": "2024-10-27T02:31:00+02:00",
    }
    # 02:30 does not exist on the spring-forward day
    assert isinstance(third, DeadLetter) and third.reason == "offered_at does not exist in Europe/Berlin"
    assert stats["answered"] == 1 and stats["dead"] == 1


def test_wrong_file_for_the_mapping_is_dead_lettered_not_raised() -> None:
    items = list(parse_mapped([("f:1", "a,b,c"), ("f:2", "1,2,3")], "f", {"mapping": "anonymous_bank"}))
    assert [type(i) for i in items] == [DeadLetter, DeadLetter]
    assert items[0].reason.startswith("header lacks columns")  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"fields": {"queue": "q"}, "times": {}}, "fields.call_id: required"),
        ({"fields": {"call_id": "i", "queue": "q", "colour": "c"}}, "fields.colour"),
        ({"fields": {"call_id": "i", "queue": "q"}, "timezone": "Mars/Base"}, "timezone"),
        (
            {"fields": {"call_id": "i", "queue": "q"}, "outcome": {"map": {"X": "won"}}},
            "outcome.map.X",
        ),
        (
            {"fields": {"call_id": "i", "queue": "q"}, "times": {"answered": {"offered_at": "s"}}},
            "times.answered",
        ),
    ],
)
def test_mapping_errors_name_the_key(doc: dict, message: str) -> None:
    with pytest.raises(MappingError, match=message.replace(".", r"\.")):
        load_mapping(doc)


def test_committed_bank_mapping_loads() -> None:
    spec = load_mapping("anonymous_bank")
    assert spec.timezone == "Asia/Jerusalem" and spec.delimiter == "\t"
    assert spec.fields["call_id"] == ("vru+line", "call_id")
