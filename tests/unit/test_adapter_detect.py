"""Format detection from the first lines, and the adapter registry the CLI uses."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from pipeline.core.records import DeadLetter, Parsed
from pipeline.ingest.adapters import ADAPTERS, get_adapter
from pipeline.ingest.adapters.detect import detect_file, detect_format, format_by_name

FIXTURES = Path(__file__).parents[1] / "fixtures" / "adapters"


def head(name: str, n: int = 20) -> list[str]:
    return FIXTURES.joinpath(name).read_text().splitlines()[:n]


@pytest.mark.parametrize(
    ("lines", "fmt"),
    [
        (['{"type":"call","event":"offered","call_id":"c-1","queue":"b","at":1}'], "native"),
        (head("connect_ctrs.jsonl", 2), "connect"),
        (head("connect_ctrs_array.json", 5), "connect"),
        (head("queue_log_day.txt"), "asterisk"),
        (["2024-07-01 09:00:00.1|c1|q|NONE|ENTERQUEUE||555|1"], "asterisk"),
        (head("bank_sample.tsv", 3), "tsv"),
        (["id,queue,start,end", "1,sales,2024-01-01 10:00:00,2024-01-01 10:05:00"], "csv"),
        (["hello world"], "unknown"),
        ([], "unknown"),
    ],
)
def test_detect(lines: list[str], fmt: str) -> None:
    assert detect_format(lines) == fmt


def test_registry_names() -> None:
    assert set(ADAPTERS) == {"asterisk", "asterisk-cdr", "connect", "freeswitch", "mapped", "native", "auto"}
    with pytest.raises(KeyError, match="known"):
        get_adapter("genesys")


def test_auto_dispatches_on_detected_format() -> None:
    lines = [(f"q:{i}", x) for i, x in enumerate(head("queue_log_day.txt", 100), 1)]
    stats: Counter[str] = Counter()
    items = list(get_adapter("auto")(lines, "queue_log", {"stats": stats}))
    assert sum(isinstance(i, Parsed) for i in items) == 20
    assert sum(isinstance(i, DeadLetter) for i in items) == 5
    assert stats["ENTERQUEUE"] == 4

    bank = [(f"b:{i}", x) for i, x in enumerate(FIXTURES.joinpath("bank_sample.tsv").read_text().splitlines(), 1)]
    items = list(get_adapter("auto")(bank, "bank", {"mapping": "anonymous_bank"}))
    assert sum(isinstance(i, Parsed) for i in items) == 5


def test_auto_dead_letters_what_it_cannot_recognise() -> None:
    items = list(get_adapter("auto")([("x:1", "hello world"), ("x:2", "")], "x", None))
    assert [(i.position, i.reason) for i in items] == [("x:1", "unrecognised input format")]  # type: ignore[union-attr]


def test_native_passthrough() -> None:
    items = list(
        get_adapter("native")(
            [
                ("n:1", '{"type":"qa","call_id":"c","agent_id":"a","score":90,"at":1}'),
                ("n:2", "{oops"),
            ],
            "n",
            None,
        )
    )
    assert isinstance(items[0], Parsed) and items[0].record["score"] == 90
    assert isinstance(items[1], DeadLetter) and items[1].reason.startswith("broken JSON")


NATIVE_LINE = '{"type":"call","event":"offered","call_id":"c-1","queue":"b","at":1}'
QUEUE_LOG_LINE = "1700000010|1700000010.1|support|NONE|ENTERQUEUE||+15551230001|1"


@pytest.mark.parametrize(
    ("lines", "fmt"),
    [
        (["garbage at the top", NATIVE_LINE, NATIVE_LINE], "native"),
        (["{broken", NATIVE_LINE, "", NATIVE_LINE, "not json"], "native"),
        (["garbage", QUEUE_LOG_LINE, QUEUE_LOG_LINE], "asterisk"),
        (["garbage", '{"ContactId":"x","Queue":{"Name":"q"}}', '{"ContactId":"y"}'], "connect"),
        (["garbage", NATIVE_LINE], "unknown"),  # undecided: the caller falls back on the file name
    ],
)
def test_one_garbage_line_does_not_change_the_format(lines: list[str], fmt: str) -> None:
    assert detect_format(lines) == fmt


@pytest.mark.parametrize(
    ("name", "text", "fmt"),
    [
        ("x.parquet", "not read", "parquet"),
        ("day.jsonl", '{"type":"call","event":"offered"}\n', "jsonl"),
        ("calls.csv", "type,event,call_id\ncall,offered,c-1\ncall,answered,c-1\n", "csv"),
        # the bank's own `type` column holds queue names, not record types: another ACD's CSV
        ("bank.csv", "type,start,end\nretail,1,2\nretail,3,4\n", "mapped"),
        ("bank.tsv", "id\tqueue\tstart\n1\tsales\t2\n", "mapped"),
        ("queue_log", "1719824400|c1|q|NONE|ENTERQUEUE||555|1\n", "asterisk"),
        # lines undecided (both broken), the name decides: JSON with Connect keys
        ("ctr.json", '{"ContactId": "a",\n garbage\n', "connect"),
        ("ctr.json", '{"type": \n garbage\n', "jsonl"),
        ("notes.txt", "hello there\nnothing here\n", "unknown"),
    ],
)
def test_detect_file(tmp_path: Path, name: str, text: str, fmt: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    assert detect_file(str(path)) == fmt


def test_standard_input_is_json_lines() -> None:
    assert detect_file("-") == "jsonl"


@pytest.mark.parametrize(
    ("name", "kind"),
    [("a.PQ", "parquet"), ("a.tsv", "tsv"), ("a.csv", "csv"), ("a.ndjson", "json"), ("a.json", "json"), ("a", None)],
)
def test_format_by_name(name: str, kind: str | None) -> None:
    assert format_by_name(name) == kind
