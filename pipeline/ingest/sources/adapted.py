"""Sources that read other systems' formats through an adapter (pipeline/ingest/adapters/).

Lifecycle: ``adapted_batches`` opens the file when iteration starts, runs the
adapter over its numbered lines and yields a ``RawBatch`` per ``batch_size``
records; ``followed_batches`` tails a live file (surviving rotation) on a reader
thread and yields a batch whenever ``flush_s`` passes or ``batch_size`` records
wait, until ``stop`` is set and everything written so far has been read.
"""

from __future__ import annotations

import csv
import queue
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from pipeline.core.records import DeadLetter, Parsed, RawBatch
from pipeline.ingest.adapters import get_adapter
from pipeline.ingest.adapters.mapped import MappedReader, MappingError, load_mapping
from pipeline.ingest.sources.files import source_name
from pipeline.ingest.tailer import follow

ADAPTER_FORMATS = ("asterisk", "asterisk-cdr", "connect", "freeswitch", "mapped")


def numbered_lines(path: str) -> Iterator[tuple[str, str]]:
    handle = sys.stdin if path == "-" else open(path, encoding="utf-8", errors="replace")  # noqa: SIM115
    try:
        for number, line in enumerate(handle, start=1):
            yield str(number), line.rstrip("\r\n")
    finally:
        if handle is not sys.stdin:
            handle.close()


def check_mapped_header(path: str, mapping: str, guessed: bool) -> None:
    """Raise ``MappingError`` unless the header of ``path`` has the columns ``mapping``
    reads (``guessed``: the format was detected, the bundled mapping assumed), so an
    export of another kind is refused whole instead of dead-lettered row by row."""
    spec = load_mapping(mapping)
    if spec.columns or not spec.header:
        return  # columns given by the mapping: no header to check
    first = next((text for _, text in numbered_lines(path) if text.strip()), "")
    # the file's own separator, which may not be the mapping's (a CSV met by a TSV mapping)
    sep = spec.delimiter if spec.delimiter in first else next((d for d in "\t,;|" if d in first), spec.delimiter)
    header = next(csv.reader([first], delimiter=sep), [])
    missing = MappedReader(spec).missing_columns(header)
    if not missing:
        return
    shown = ", ".join(c.strip() for c in header[:8]) + (", ..." if len(header) > 8 else "")
    if guessed:
        raise MappingError(
            f"{path}: its header ({shown}) matches no known format: not callpulse CSV (no type column) "
            f"nor the {spec.name} export (no {', '.join(missing[:4])}); for another system's export "
            "pass --format mapped --mapping FILE (see docs/formats.md)"
        )
    raise MappingError(f"{path}: its header lacks the columns {', '.join(missing)} that mapping {spec.name!r} reads")


def _chunks(items: Iterable[Parsed | DeadLetter], source: str, batch_size: int) -> Iterator[RawBatch]:
    chunk: list[Parsed | DeadLetter] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= batch_size:
            yield RawBatch.from_items(source, chunk)
            chunk = []
    if chunk:
        yield RawBatch.from_items(source, chunk)


def adapted_batches(path: str, fmt: str, batch_size: int, options: Mapping[str, Any]) -> Iterator[RawBatch]:
    source = source_name(path)
    adapter = get_adapter(fmt)
    yield from _chunks(adapter(numbered_lines(path), source, options), source, batch_size)


def followed_batches(
    path: str,
    fmt: str,
    options: Mapping[str, Any],
    stop: threading.Event,
    batch_size: int = 10_000,
    flush_s: float = 1.0,
) -> Iterator[RawBatch]:
    """Tail ``path`` through the adapter; batches come at least every ``flush_s``."""
    source = source_name(path)
    adapter = get_adapter(fmt)
    items: queue.Queue[Parsed | DeadLetter | None] = queue.Queue(maxsize=batch_size * 4)
    failure: list[BaseException] = []

    def read() -> None:
        try:
            for item in adapter(follow(path, stop=stop), source, options):
                items.put(item)
        except BaseException as exc:  # noqa: BLE001 - handed to the consuming thread
            failure.append(exc)
        finally:
            items.put(None)

    reader = threading.Thread(target=read, name="callpulse-follow", daemon=True)
    reader.start()
    done = False
    while not done:
        chunk: list[Parsed | DeadLetter] = []
        try:
            item = items.get(timeout=flush_s)
            while True:
                if item is None:
                    done = True
                    break
                chunk.append(item)
                if len(chunk) >= batch_size:
                    break
                item = items.get_nowait()
        except queue.Empty:
            pass
        if chunk:
            yield RawBatch.from_items(source, chunk)
    reader.join(timeout=5)
    if failure:
        raise failure[0]
