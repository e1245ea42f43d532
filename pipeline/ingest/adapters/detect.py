"""Guess an input's format from its first lines.

``native`` (JSON objects with a ``type``), ``connect`` (JSON contact records with
``ContactId``, one per line or in an array), ``asterisk`` (``epoch|callid|queue|
agent|EVENT|...`` lines), ``tsv`` / ``csv`` (delimited with a header, for the
mapped adapter). Each line votes for the format it matches and the majority wins,
so one garbage line does not change the format; ``unknown`` when nothing fits or
the lines are split. No line is consumed.
"""

from __future__ import annotations

import csv
import json
import re
from collections import Counter

_QUEUE_LOG = re.compile(r"^\s*(\d{9,11}(\.\d+)?|\d{4}-\d\d-\d\d[ T][\d:.]+)\|[^|]*\|[^|]*\|[^|]*\|[A-Z_]+(\||$)")
CONNECT_KEYS = ("ContactId", "AWSContactTraceRecordFormatVersion", "InitiationMethod")


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
        return "native" if re.search(r'"type"\s*:', text) else "unknown"
    if isinstance(value, list):
        value = value[0] if value else {}
    if not isinstance(value, dict):
        return "unknown"
    if "ContactId" in value:
        return "connect"
    if "type" in value:
        return "native"
    return "unknown"
