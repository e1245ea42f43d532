"""Guess an input's format from its first lines.

``native`` (JSON objects with a ``type``), ``connect`` (JSON contact records with
``ContactId``, one per line or in an array), ``asterisk`` (``epoch|callid|queue|
agent|EVENT|...`` lines), ``tsv`` / ``csv`` (delimited with a header, for the
mapped adapter). ``unknown`` when nothing fits; no line is consumed.
"""

from __future__ import annotations

import csv
import json
import re

_QUEUE_LOG = re.compile(r"^\s*(\d{9,11}(\.\d+)?|\d{4}-\d\d-\d\d[ T][\d:.]+)\|[^|]*\|[^|]*\|[^|]*\|[A-Z_]+(\||$)")
_CONNECT_KEYS = ("ContactId", "AWSContactTraceRecordFormatVersion", "InitiationMethod")


def detect_format(first_lines: list[str]) -> str:
    lines = [line.rstrip("\r\n") for line in first_lines if line.strip()]
    if not lines:
        return "unknown"
    head = lines[0].lstrip()
    if head.startswith(("{", "[")):
        return _json_kind("\n".join(lines))
    if sum(bool(_QUEUE_LOG.match(line)) for line in lines) * 2 > len(lines):
        return "asterisk"
    sample = "\n".join(lines[:20])
    for name, delimiter in (("tsv", "\t"), ("csv", ","), ("csv", ";"), ("csv", "|")):
        rows = list(csv.reader(sample.splitlines(), delimiter=delimiter))
        width = len(rows[0])
        # a header of 3+ columns and (nearly) every row as wide: a broken row may follow
        if width >= 3 and sum(len(r) == width for r in rows) >= 0.8 * len(rows):
            return name
    return "unknown"


def _json_kind(text: str) -> str:
    decoder = json.JSONDecoder()
    text = text.lstrip()
    try:
        value, _ = decoder.raw_decode(text)
    except json.JSONDecodeError:
        # a long pretty-printed array/object cut short: look at the keys we can see
        if any(f'"{key}"' in text for key in _CONNECT_KEYS):
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
