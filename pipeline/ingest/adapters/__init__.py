"""Adapters: what phone systems emit → native callpulse records.

Each adapter is a function ``(lines, source, options) -> Iterator[Parsed | DeadLetter]``
over ``(position, line)`` pairs; ``options`` is a mapping (``timezone``, ``mapping``
for the mapped format, ``stats`` a ``collections.Counter`` that receives the
adapter's counts when it finishes). Adapters never raise on bad input: a line they
cannot use becomes a ``DeadLetter``. ``get_adapter("auto")`` looks at the first
lines and picks one.

============  ======================================================  =================
format        input                                                   emits
============  ======================================================  =================
asterisk      app_queue queue_log lines (``asterisk.follow`` tails)   call + agent events
asterisk-cdr  Asterisk CDR CSV with RTPAUDIOQOS (and MES) columns     ``quality``
connect       Amazon Connect contact records (JSON lines / array)     ``cdr``
freeswitch    FreeSWITCH CDRs (mod_json_cdr JSON, mod_xml_cdr XML)    ``cdr`` + ``quality``
mapped        CSV/TSV of another ACD + a TOML mapping (``mappings/``)  ``cdr``
native        callpulse JSON lines (passed through)                   as given
============  ======================================================  =================
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from pipeline.core.pii import mask_phone_like
from pipeline.core.records import DeadLetter, Parsed
from pipeline.ingest.adapters.asterisk import parse_queue_log
from pipeline.ingest.adapters.asterisk_cdr import parse_asterisk_cdr
from pipeline.ingest.adapters.connect import parse_contact_records
from pipeline.ingest.adapters.detect import detect_format
from pipeline.ingest.adapters.freeswitch import parse_freeswitch
from pipeline.ingest.adapters.mapped import parse_mapped

Adapter = Callable[[Iterable[tuple[str, str]], str, Mapping[str, Any] | None], Iterator[Parsed | DeadLetter]]
DETECT_LINES = 20


def parse_native(
    lines: Iterable[tuple[str, str]],
    source: str = "native",
    options: Mapping[str, Any] | None = None,
) -> Iterator[Parsed | DeadLetter]:
    """Native JSON lines as they are (validation happens in the pipeline)."""
    for position, line in lines:
        text = line.rstrip("\r\n")
        if not text.strip():
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            yield DeadLetter(source, position, mask_phone_like(text), f"broken JSON: {exc.msg}")
            continue
        if not isinstance(record, dict):
            yield DeadLetter(source, position, mask_phone_like(text), "not a JSON object")
            continue
        yield Parsed(position, text, record)


def parse_auto(
    lines: Iterable[tuple[str, str]],
    source: str = "input",
    options: Mapping[str, Any] | None = None,
) -> Iterator[Parsed | DeadLetter]:
    """Detect the format from the first lines, then hand everything to that adapter."""
    iterator = iter(lines)
    head = list(itertools.islice(iterator, DETECT_LINES))
    fmt = detect_format([line for _, line in head])
    name = "mapped" if fmt in ("csv", "tsv") else fmt
    everything = itertools.chain(head, iterator)
    if name not in ADAPTERS or name == "auto":
        for position, line in everything:
            if line.strip():
                yield DeadLetter(source, position, mask_phone_like(line), "unrecognised input format")
        return
    yield from ADAPTERS[name](everything, source, options)


ADAPTERS: dict[str, Adapter] = {
    "asterisk": parse_queue_log,
    "asterisk-cdr": parse_asterisk_cdr,
    "connect": parse_contact_records,
    "freeswitch": parse_freeswitch,
    "mapped": parse_mapped,
    "native": parse_native,
    "auto": parse_auto,
}


def get_adapter(name: str) -> Adapter:
    """The adapter for a ``--format`` value; ``KeyError`` names the known ones."""
    try:
        return ADAPTERS[name]
    except KeyError:
        raise KeyError(f"unknown format {name!r}; known: {', '.join(sorted(ADAPTERS))}") from None


__all__ = ["ADAPTERS", "Adapter", "detect_format", "get_adapter", "parse_auto", "parse_native"]
