"""Asterisk queue_log adapter: every verb, a day of interleaved calls, garbage."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.core.records import DeadLetter, Parsed
from pipeline.ingest.adapters.asterisk import QueueLogParser, parse_queue_log

FIXTURES = Path(__file__).parents[1] / "fixtures" / "adapters"


def run(*lines: str) -> list[Parsed | DeadLetter]:
    return list(QueueLogParser().parse((f"queue_log:{i}", x) for i, x in enumerate(lines, 1)))


def records(*lines: str) -> list[dict]:
    items = run(*lines)
    assert all(isinstance(i, Parsed) for i in items), items
    return [i.record for i in items]  # type: ignore[union-attr]


C = {"type": "call", "call_id": "c1", "queue": "q"}
A = {"type": "agent", "agent_id": "SIP/1"}

# one line each, fresh parser: what every standard verb becomes (epoch 1000)
VERBS = [
    ("1000|c1|q|NONE|ENTERQUEUE||5551234|1", [dict(C, event="offered", at=1000, caller="5551234")]),
    ("1000|c1|q|NONE|ENTERQUEUE||unknown|1", [dict(C, event="offered", at=1000)]),
    (
        "1000|c1|q|SIP/1|CONNECT|5|1000.9|2",
        [
            dict(C, event="offered", at=995),
            dict(C, event="answered", at=1000, agent_id="SIP/1"),
            dict(A, state="busy", at=1000),
        ],
    ),
    (
        "1000|c1|q|NONE|ABANDON|3|1|7",
        [dict(C, event="offered", at=993), dict(C, event="abandoned", at=1000)],
    ),
    (
        "1000|c1|q|NONE|EXITWITHTIMEOUT|1|1|30",
        [dict(C, event="offered", at=970), dict(C, event="exited", at=1000)],
    ),
    (
        "1000|c1|q|NONE|EXITEMPTY|1|1|0",
        [dict(C, event="offered", at=1000), dict(C, event="exited", at=1000)],
    ),
    (
        "1000|c1|q|NONE|EXITWITHKEY|5|1|1|12",
        [dict(C, event="offered", at=988), dict(C, event="exited", at=1000)],
    ),
]
for verb in ("COMPLETEAGENT", "COMPLETECALLER"):
    VERBS.append(
        (
            f"1000|c1|q|SIP/1|{verb}|10|60|1",
            [
                dict(C, event="offered", at=930),
                dict(C, event="answered", at=940, agent_id="SIP/1"),
                dict(C, event="ended", at=1000, agent_id="SIP/1", talk_s=60),
                dict(A, state="ready", at=1000),
            ],
        )
    )
for line in (
    "1000|c1|q|SIP/1|TRANSFER|200|from-internal|10|60|1",
    "1000|c1|q|SIP/1|BLINDTRANSFER|200|from-internal|10|60|1",
    "1000|c1|q|SIP/1|ATTENDEDTRANSFER|BRIDGE|1000.7|10|60|1",
):
    VERBS.append(
        (
            line,
            [
                dict(C, event="offered", at=930),
                dict(C, event="answered", at=940, agent_id="SIP/1"),
                dict(C, event="transferred", at=1000, agent_id="SIP/1"),
                dict(C, event="ended", at=1000, agent_id="SIP/1", talk_s=60),
                dict(A, state="ready", at=1000),
            ],
        )
    )
VERBS += [
    ("1000|c1|q|SIP/1|RINGNOANSWER|15000", []),
    ("1000|c1|q|SIP/1|RINGCANCELED|2000", []),
    (
        "1000|NONE|NONE|SIP/1|AGENTLOGIN|SIP/1",
        [dict(A, state="login", at=1000), dict(A, state="ready", at=1000)],
    ),
    ("1000|NONE|NONE|SIP/1|AGENTLOGOFF|SIP/1|3600", [dict(A, state="logout", at=1000)]),
    (
        "1000|NONE|q|SIP/1|ADDMEMBER|",
        [dict(A, state="login", at=1000, queues=["q"]), dict(A, state="ready", at=1000)],
    ),
    (
        "1000|NONE|q|SIP/1|ADDMEMBER|PAUSED",
        [dict(A, state="login", at=1000, queues=["q"]), dict(A, state="not_ready", at=1000)],
    ),
    ("1000|NONE|q|SIP/1|REMOVEMEMBER|", [dict(A, state="logout", at=1000)]),
    ("1000|NONE|q|SIP/1|PAUSE|break", [dict(A, state="not_ready", at=1000, reason="break")]),
    ("1000|NONE|q|SIP/1|PAUSE|", [dict(A, state="not_ready", at=1000)]),
    ("1000|NONE|q|SIP/1|UNPAUSE|", [dict(A, state="ready", at=1000)]),
    (
        "1000|NONE|NONE|SIP/1|PAUSEALL|training",
        [dict(A, state="not_ready", at=1000, reason="training")],
    ),
    ("1000|NONE|NONE|SIP/1|UNPAUSEALL|", [dict(A, state="ready", at=1000)]),
    ("1000|NONE|NONE|NONE|QUEUESTART|", []),
    ("1000|NONE|NONE|NONE|CONFIGRELOAD|", []),
    ("1000|c1|q|SIP/1|SYSCOMPAT|", []),
    ("1000|c1|q|NONE|DID|+18005550199", []),
    ("1000|c1|q|NONE|INFO|something", []),
    ("1000|c1|q|SIP/1|AGENTDUMP|", []),
]


@pytest.mark.parametrize(("line", "expected"), VERBS, ids=[v[0].split("|")[4] for v in VERBS])
def test_every_verb(line: str, expected: list[dict]) -> None:
    assert records(line) == expected


def test_older_single_data_field_reads_the_same() -> None:
    # queue_log kept in a table with one ``data`` column: the same |-separated args
    assert records("1000|c1|q|SIP/1|COMPLETEAGENT|10|60|1")[2]["talk_s"] == 60


def test_database_style_timestamps_use_the_site_zone() -> None:
    parser = QueueLogParser(timezone="Asia/Jerusalem")
    items = list(parser.parse([("p:1", "2024-07-01 09:00:00.000001|c1|q|NONE|ENTERQUEUE||555|1")]))
    assert items[0].record["at"] == "2024-07-01T09:00:00.000001+03:00"  # type: ignore[union-attr]


def test_a_day_of_interleaved_calls() -> None:
    lines = FIXTURES.joinpath("queue_log_day.txt").read_text().splitlines()
    items = list(QueueLogParser().parse((f"queue_log:{i}", x) for i, x in enumerate(lines, 1)))
    got = [(i.position, i.record) for i in items if isinstance(i, Parsed)]
    call1 = {
        "type": "call",
        "call_id": "1700000010.1",
        "queue": "support",
        "caller": "+15551230001",
    }
    call2 = {"type": "call", "call_id": "1700000012.2", "caller": "+15551230002"}
    p1 = {"type": "agent", "agent_id": "PJSIP/1001"}
    s2 = {"type": "agent", "agent_id": "SIP/2002"}
    s3 = {"type": "agent", "agent_id": "SIP/3003"}
    assert got == [
        ("queue_log:2", dict(p1, state="login", at=1700000001, queues=["support"])),
        ("queue_log:2", dict(p1, state="ready", at=1700000001)),
        ("queue_log:3", dict(s2, state="login", at=1700000003, queues=["support"])),
        ("queue_log:3", dict(s2, state="ready", at=1700000003)),
        ("queue_log:4", dict(call1, event="offered", at=1700000010)),
        ("queue_log:5", dict(call2, queue="support", event="offered", at=1700000012)),
        # line 6: RINGNOANSWER to PJSIP/1001 changes nothing; the caller then abandons
        (
            "queue_log:7",
            dict(call2, queue="support", event="answered", at=1700000025, agent_id="SIP/2002"),
        ),
        ("queue_log:7", dict(s2, state="busy", at=1700000025)),
        ("queue_log:8", dict(call1, event="abandoned", at=1700000030)),
        # PAUSEALL and the per-queue PAUSE logged with it: one not_ready
        ("queue_log:9", dict(p1, state="not_ready", at=1700000040, reason="lunch")),
        (
            "queue_log:11",
            dict(call2, queue="support", event="transferred", at=1700000100, agent_id="SIP/2002"),
        ),
        (
            "queue_log:11",
            dict(call2, queue="support", event="ended", at=1700000100, agent_id="SIP/2002", talk_s=75),
        ),
        ("queue_log:11", dict(s2, state="ready", at=1700000100)),
        ("queue_log:12", dict(call2, queue="sales", event="offered", at=1700000101)),
        (
            "queue_log:13",
            dict(call2, queue="sales", event="answered", at=1700000110, agent_id="SIP/3003"),
        ),
        ("queue_log:13", dict(s3, state="busy", at=1700000110)),
        (
            "queue_log:14",
            dict(call2, queue="sales", event="ended", at=1700000200, agent_id="SIP/3003", talk_s=90),
        ),
        ("queue_log:14", dict(s3, state="ready", at=1700000200)),
        ("queue_log:15", dict(p1, state="ready", at=1700000300)),
        # an ENTERQUEUE never closed stays an offered call
        (
            "queue_log:21",
            dict(
                type="call",
                call_id="1700000400.4",
                queue="support",
                event="offered",
                at=1700000400,
                caller="+15551230004",
            ),
        ),
    ]
    dead = [(d.position, d.reason) for d in items if isinstance(d, DeadLetter)]
    assert dead == [
        ("queue_log:16", "not a queue_log line: 1 fields, need 5+"),
        ("queue_log:17", "not a queue_log line: 3 fields, need 5+"),
        ("queue_log:18", "bad timestamp 'notanumber'"),
        ("queue_log:19", "unknown queue_log event 'FROBNICATE'"),
        ("queue_log:20", "PAUSE without an agent"),
    ]
    # the caller's number never reaches a dead letter in the clear
    bad_ts = next(d for d in items if isinstance(d, DeadLetter) and d.position == "queue_log:18")
    assert "15551230003" not in bad_ts.raw


def test_pause_during_a_call_takes_effect_when_the_call_ends() -> None:
    out = records(
        "100|c1|q|NONE|ENTERQUEUE||555|1",
        "105|c1|q|SIP/1|CONNECT|5|x|1",
        "110|NONE|q|SIP/1|PAUSE|meeting",
        "200|c1|q|SIP/1|COMPLETEAGENT|5|95|1",
    )
    states = [(r["state"], r["at"], r.get("reason")) for r in out if r["type"] == "agent"]
    assert states == [("busy", 105, None), ("not_ready", 200, "meeting")]


def test_removed_from_one_queue_but_still_in_another_is_not_logged_out() -> None:
    out = records(
        "1|NONE|q1|SIP/1|ADDMEMBER|",
        "2|NONE|q2|SIP/1|ADDMEMBER|",
        "3|NONE|q1|SIP/1|REMOVEMEMBER|",
        "4|NONE|q2|SIP/1|REMOVEMEMBER|",
    )
    assert [(r["state"], r["at"], r.get("queues")) for r in out] == [
        ("login", 1, ["q1"]),
        ("ready", 1, None),
        ("login", 2, ["q1", "q2"]),
        ("ready", 2, None),
        ("logout", 4, None),
    ]


def test_registry_entry_reports_counts() -> None:
    stats: Counter[str] = Counter()
    lines = [("p:1", "1|c|q|NONE|ENTERQUEUE||1|1"), ("p:2", "nonsense")]
    items = list(parse_queue_log(lines, "queue_log", {"stats": stats}))
    assert (
        len(items) == 2 and stats["ENTERQUEUE"] == 1 and sum(v for k, v in stats.items() if k.startswith("dead:")) == 1
    )


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.text(alphabet=st.sampled_from("0123456789|.ABCDEFGHIJKLMNOPQRSTUVWXYZ/ \n"), max_size=60),
        max_size=20,
    )
)
def test_never_raises_and_every_line_is_accounted_for(lines: list[str]) -> None:
    items = run(*lines)
    for item in items:
        assert isinstance(item, (Parsed, DeadLetter))
    dead_positions = {i.position for i in items if isinstance(i, DeadLetter)}
    parsed_positions = {i.position for i in items if isinstance(i, Parsed)}
    assert not dead_positions & parsed_positions
