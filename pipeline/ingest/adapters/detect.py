"""The one format detector: what an input is, from its first lines and its file name.

``detect_format(lines)`` looks at lines only: ``native`` (JSON objects with a
``type``), ``connect`` (JSON contact records with ``ContactId``, one per line or in an
array), ``freeswitch`` (FreeSWITCH JSON CDRs: ``variables`` beside ``core-uuid`` /
``channel_data``; or XML ``<cdr>`` documents), ``asterisk``
(``epoch|callid|queue|agent|EVENT|...`` lines), ``tsv`` / ``csv`` (delimited with a
header). Each line votes for the format it matches and the majority wins, so one
garbage line does not change the format; ``unknown`` when nothing fits or the lines
are split. No line is consumed.

``format_by_name(path)`` is what a file's extension says, and ``detect_file(path)``
is what ``--format auto`` means for a file: both of the above, plus telling native
CSV from another ACD's (mapped).
"""

from __future__ import annotations

import csv
import itertools
import json
import re
from collections import Counter

from pipeline.core.records import RECORD_TYPES

_QUEUE_LOG = re.compile(r"^\s*(\d{9,11}(\.\d+)?|\d{4}-\d\d-\d\d[ T][\d:.]+)\|[^|]*\|[^|]*\|[^|]*\|[A-Z_]+(\||$)")
CONNECT_KEYS = ("ContactId", "AWSContactTraceRecordFormatVersion", "InitiationMethod")
FREESWITCH_KEYS = ("core-uuid", "channel_data", "callflow")


def detect_format(first_lines: list[str]) -> str:
    """The format most of the first non-empty lines match, so that one garbage line
    (at the top or anywhere) does not change it; ``unknown`` when undecided."""
    lines = [line.rstrip("\r\n") for line in first_lines if line.strip()]
    if not lines:
        return "unknown"
    votes = line_votes(lines)
    if votes:
        kind, count = votes.most_common(1)[0]
        if count * 2 > len(lines):
            return kind
    if lines[0].lstrip().startswith(("{", "[")):
        return _json_kind("\n".join(lines))  # one JSON document over several lines
    if lines[0].lstrip().startswith("<") and any("<cdr" in line for line in lines):
        return "freeswitch"  # mod_xml_cdr documents
    sample = lines[:20]
    for name, delimiter in (("tsv", "\t"), ("csv", ","), ("csv", ";"), ("csv", "|")):
        rows = list(csv.reader(sample, delimiter=delimiter))
        width = len(rows[0])
        # a header of 3+ columns and most rows as wide: a broken row may follow
        if width >= 3 and sum(len(r) == width for r in rows) * 2 > len(rows):
            return name
    return "unknown"


def line_votes(lines: list[str]) -> Counter[str]:
    """How many lines look like each one-record-per-line format (native, connect, asterisk)."""
    votes: Counter[str] = Counter()
    for line in lines:
        kind = _line_kind(line)
        if kind is not None:
            votes[kind] += 1
    return votes


def _line_kind(line: str) -> str | None:
    text = line.strip()
    if text.startswith("{"):
        try:
            value = json.loads(text)
        except (ValueError, RecursionError):
            return None
        if isinstance(value, dict):
            if any(key in value for key in CONNECT_KEYS):
                return "connect"
            if _is_freeswitch(value):
                return "freeswitch"
            if "type" in value:
                return "native"
        return None
    return "asterisk" if _QUEUE_LOG.match(text) else None


def _json_kind(text: str) -> str:
    decoder = json.JSONDecoder()
    text = text.lstrip()
    try:
        value, _ = decoder.raw_decode(text)
    except json.JSONDecodeError:
        # a long pretty-printed array/object cut short: look at the keys we can see
        if any(f'"{key}"' in text for key in CONNECT_KEYS):
            return "connect"
        if '"variables"' in text and any(f'"{key}"' in text for key in FREESWITCH_KEYS):
            return "freeswitch"
        return "native" if re.search(r'"type"\s*:', text) else "unknown"
    if isinstance(value, list):
        value = value[0] if value else {}
    if not isinstance(value, dict):
        return "unknown"
    if "ContactId" in value:
        return "connect"
    if _is_freeswitch(value):
        return "freeswitch"
    if "type" in value:
        return "native"
    return "unknown"


def _is_freeswitch(value: dict[str, object]) -> bool:
    return isinstance(value.get("variables"), dict) and any(key in value for key in FREESWITCH_KEYS)


def format_by_name(path: str) -> str | None:
    """What a file's extension says: ``parquet``, ``csv``, ``tsv``, ``json`` (JSON lines or
    one JSON document), or None."""
    name = path.lower()
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    if name.endswith(".tsv"):
        return "tsv"
    if name.endswith(".csv"):
        return "csv"
    if name.endswith((".jsonl", ".ndjson", ".json")):
        return "json"
    return None


def detect_file(path: str, lines: int = 20) -> str:
    """What ``--format auto`` means for a file: a native format (``jsonl``, ``csv``,
    ``parquet``) or an adapter's (``asterisk``, ``asterisk-cdr``, ``connect``, ``freeswitch``,
    ``mapped``); ``unknown``
    when nothing fits. Standard input (``-``) is JSON lines.

    The first ``lines`` non-empty lines vote (see ``detect_format``); when they leave
    it undecided the file's extension decides, then the format most lines matched, so
    a bad line near the top is dead-lettered by the chosen format rather than
    refusing the file."""
    if path == "-":
        return "jsonl"
    by_name = format_by_name(path)
    if by_name == "parquet":
        return "parquet"
    with open(path, encoding="utf-8", errors="replace") as handle:
        head = [line.rstrip("\r\n") for line in itertools.islice((t for t in handle if t.strip()), lines)]
    found = detect_format(head)
    if found == "unknown":
        found = _by_name_or_votes(by_name, head)
    if found in ("csv", "tsv") and len(head) > 1:
        if _asterisk_cdr(head[0]):
            return "asterisk-cdr"
        return "csv" if _native_csv(head, "\t" if found == "tsv" else ",") else "mapped"
    return "jsonl" if found == "native" else found


def _by_name_or_votes(by_name: str | None, head: list[str]) -> str:
    """The format the file's name says, for lines that did not decide; else what most lines matched."""
    if by_name == "json":
        return "connect" if any(f'"{key}"' in line for line in head for key in CONNECT_KEYS) else "native"
    if by_name in ("csv", "tsv"):
        return by_name
    votes = line_votes(head).most_common(2)
    if votes and (len(votes) == 1 or votes[0][1] > votes[1][1]):
        return votes[0][0]
    return "unknown"


def _asterisk_cdr(header: str) -> bool:
    """An Asterisk CDR export carrying RTPAUDIOQOS or its JITTER / LOSS / RTT siblings
    (pipeline/ingest/adapters/asterisk_cdr.py)."""
    columns = {c.strip().lower().replace("_", "") for c in next(csv.reader([header]))}
    return "uniqueid" in columns and any(c.startswith("rtpaudioqos") for c in columns)


def _native_csv(head: list[str], sep: str) -> bool:
    """Native CSV carries callpulse's own ``type`` values; another ACD's file is mapped
    (the bank's data has a ``type`` column too, holding its queue names)."""
    header, *rows = csv.reader(head, delimiter=sep)
    columns = [c.strip() for c in header]
    if "type" not in columns:
        return False
    column = columns.index("type")
    native = sum(len(row) > column and row[column].strip() in RECORD_TYPES for row in rows)
    return native * 2 > len(rows)
