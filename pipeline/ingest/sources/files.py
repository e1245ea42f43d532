"""File sources: JSON lines, CSV and Parquet, read in batches; ``-`` is standard input.

Lifecycle: ``read_batches(path, ...)`` opens the file when iteration starts,
yields one ``RawBatch`` per ``batch_size`` records and closes it at the end.
Records of any type may be mixed in one file (each has a ``type`` field).
JSON lines are parsed a batch at a time with polars; only a batch that holds a
malformed line is parsed line by line, to dead-letter exactly the bad lines.
CSV is split into records line by line (a row with the wrong number of fields or
a quote never closed is a dead letter at its line), then each batch of good
records is parsed with polars; Parquet is read a slice of rows at a time.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections import deque
from collections.abc import Iterator, Sequence
from itertools import islice
from typing import IO, Any

import polars as pl

from pipeline.core.pii import mask_phone_like
from pipeline.core.records import NATIVE_FIELDS, RAW_SCHEMA, DeadLetter, Parsed, RawBatch
from pipeline.ingest.adapters.detect import format_by_name

FORMATS = ("jsonl", "csv", "parquet")


def source_name(path: str) -> str:
    return "stdin" if path == "-" else f"file:{path}"


def read_batches(path: str, batch_size: int = 50_000, fmt: str | None = None) -> Iterator[RawBatch]:
    """Batches of raw records from one file (``-``: standard input, JSON lines); without
    ``fmt``, the file's extension says which (anything but Parquet or CSV/TSV: JSON lines)."""
    fmt = fmt or {"parquet": "parquet", "csv": "csv", "tsv": "csv"}.get(format_by_name(path) or "", "jsonl")
    if fmt == "jsonl":
        if path == "-":
            yield from _jsonl_batches(sys.stdin.buffer, "stdin", batch_size)
        else:
            with open(path, "rb") as handle:
                yield from _jsonl_batches(handle, source_name(path), batch_size)
    elif fmt == "csv":
        yield from _csv_batches(path, batch_size)
    elif fmt == "parquet":
        yield from _parquet_batches(path, batch_size)
    else:
        raise ValueError(f"unknown file format {fmt!r} (expected one of {', '.join(FORMATS)})")


def _jsonl_batches(handle: IO[bytes], source: str, batch_size: int) -> Iterator[RawBatch]:
    """One batch per ``batch_size`` lines; a record's position is its line number."""
    first = 1
    while chunk := list(islice(handle, batch_size)):
        yield _jsonl_chunk(chunk, first, source)
        first += len(chunk)


def _jsonl_chunk(chunk: list[bytes], first: int, source: str) -> RawBatch:
    """Consecutive file lines (``first``: the number of the first), blank ones skipped.

    Column work, not a Python loop per line: at a million lines the loop cost as much
    as polars' JSON parse itself.
    """
    try:
        lines = (
            pl.DataFrame({"_raw": pl.Series(chunk, dtype=pl.Binary).cast(pl.String)})
            .with_row_index("_pos", offset=first)
            .with_columns(pl.col("_pos").cast(pl.String), pl.col("_raw").str.strip_chars())
            .filter(pl.col("_raw") != "")
        )
    except pl.exceptions.ComputeError:  # not UTF-8 somewhere: line by line finds where
        lines = None
    if lines is not None:
        parsed = _parse_lines(b"".join(chunk), lines, source)
        if parsed is not None:
            return parsed
    stripped = [(line.strip(), str(n)) for n, line in enumerate(chunk, start=first)]
    kept = [(line, pos) for line, pos in stripped if line]
    return _jsonl_batch_line_by_line([line for line, _ in kept], [pos for _, pos in kept], source)


def jsonl_batch(lines: list[bytes], positions: Sequence[str] | pl.Series, source: str) -> RawBatch:
    """One batch from JSON-lines values (Kafka message values), parsed together."""
    try:
        frame = pl.DataFrame(
            {
                "_pos": pl.Series(positions, dtype=pl.String),
                "_raw": pl.Series(lines, dtype=pl.Binary).cast(pl.String),
            }
        )
    except pl.exceptions.ComputeError:
        frame = None
    parsed = _parse_lines(b"\n".join(lines), frame, source) if frame is not None else None
    return parsed if parsed is not None else _jsonl_batch_line_by_line(lines, positions, source)


def _parse_lines(data: bytes, lines: pl.DataFrame, source: str) -> RawBatch | None:
    """Parse ``data`` (the non-blank ``lines``: _pos, _raw) with polars in one go; None
    when some line is not one JSON object, to be found line by line."""
    try:
        frame = pl.read_ndjson(io.BytesIO(data), schema=RAW_SCHEMA)
    except Exception:  # noqa: BLE001 - any failure means: find the bad lines one by one
        return None
    if frame.height != lines.height or not lines.get_column("_raw").str.starts_with("{").all():
        return None
    return RawBatch(source=source, frame=pl.concat([frame, lines], how="horizontal"))


def _jsonl_batch_line_by_line(lines: list[bytes], positions: Sequence[str] | pl.Series, source: str) -> RawBatch:
    items: list[Parsed | DeadLetter] = []
    for line, pos in zip(lines, positions, strict=True):
        text = line.decode("utf-8", errors="replace")
        try:
            value: Any = json.loads(line)
        except (ValueError, UnicodeDecodeError) as exc:
            items.append(
                DeadLetter(source, pos, _clip(mask_phone_like(text)), f"malformed JSON: {exc.__class__.__name__}")
            )
            continue
        if not isinstance(value, dict):
            items.append(DeadLetter(source, pos, _clip(mask_phone_like(text)), "not a JSON object"))
            continue
        items.append(Parsed(pos, text, value))
    return RawBatch.from_items(source, items)


MAX_RAW = 16_384


def _clip(text: str) -> str:
    """Dead letters keep the raw text, up to a bound (a huge message must not bloat the store)."""
    return text if len(text) <= MAX_RAW else text[:MAX_RAW] + f"...[{len(text) - MAX_RAW} more characters]"


def _as_raw_frame(frame: pl.DataFrame, positions: pl.Series, source: str, dead: list[DeadLetter]) -> RawBatch:
    """Keep the native columns (as strings), fill the missing ones, add position and raw text.

    The raw text is the row as a JSON object (every column, types kept), built for the
    whole frame at once.
    """
    cols: list[pl.Expr] = []
    for name in NATIVE_FIELDS:
        if name not in frame.columns:
            cols.append(pl.lit(None, dtype=pl.String).alias(name))
            continue
        dtype = frame.schema[name]
        col = pl.col(name)
        if isinstance(dtype, pl.List):
            col = col.list.eval(pl.element().cast(pl.String)).list.join(",")
        elif isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
            col = col.dt.to_string("%Y-%m-%dT%H:%M:%S%.f%:z")
        else:
            col = col.cast(pl.String)
        cols.append(col.alias(name))
    raw = pl.struct(pl.all()).struct.json_encode().alias("_raw")
    out = frame.select(*cols, positions.alias("_pos"), raw)
    return RawBatch(source=source, frame=out, dead=dead)


# A quoted CSV field may hold line breaks, but a record spanning more lines than this
# is taken for a quote that was never closed.
MAX_RECORD_LINES = 1_000


def _csv_batches(path: str, batch_size: int) -> Iterator[RawBatch]:
    """CSV a batch of records at a time: the header is line 1; a row with the wrong number
    of fields or a quote never closed is a dead letter (its line number as position),
    and reading goes on with the next line."""
    separator = "\t" if path.lower().endswith(".tsv") else ","
    source = source_name(path)
    with open(path, "rb") as handle:
        lines = ((str(n), line.rstrip(b"\r\n")) for n, line in enumerate(handle, start=1))
        first = next((line for _, line in lines if line.strip()), None)
        if first is None:
            return
        text = first.removeprefix(b"\xef\xbb\xbf").decode("utf-8", errors="replace")
        header = next(csv.reader([text], delimiter=separator))
        good: list[bytes] = []
        positions: list[str] = []
        dead: list[DeadLetter] = []
        for item in _csv_records(lines, separator, len(header), source):
            if isinstance(item, DeadLetter):
                dead.append(item)
            else:
                positions.append(item[0])
                good.append(item[1])
            if len(good) + len(dead) >= batch_size:
                yield _csv_batch(good, positions, dead, header, separator, source)
                good, positions, dead = [], [], []
        if good or dead:
            yield _csv_batch(good, positions, dead, header, separator, source)


def _csv_records(
    lines: Iterator[tuple[str, bytes]], separator: str, width: int, source: str
) -> Iterator[tuple[str, bytes] | DeadLetter]:
    """Each record after the header as (line number, bytes), or a dead letter."""
    sep = separator.encode()
    pushed_back: deque[tuple[str, bytes]] = deque()

    def next_line() -> tuple[str, bytes] | None:
        return pushed_back.popleft() if pushed_back else next(lines, None)

    while (item := next_line()) is not None:
        position, line = item
        if not line.strip():
            continue
        record, taken = line, list[tuple[str, bytes]]()
        while record.count(b'"') % 2 and len(taken) < MAX_RECORD_LINES:
            # an odd number of quotes: a quoted field goes on to the next line, or was never closed
            following = next_line()
            if following is None:
                break
            taken.append(following)
            record += b"\n" + following[1]
        problem = _csv_problem(record, sep, separator, width)
        if problem is not None:
            if taken or record.count(b'"') % 2:
                problem = "csv: unclosed quote"
                pushed_back.extendleft(reversed(taken))  # the lines after it are read again
            text = line.decode("utf-8", errors="replace")
            yield DeadLetter(source, position, _clip(mask_phone_like(text)), problem)
            continue
        yield position, record


def _csv_problem(record: bytes, sep: bytes, separator: str, width: int) -> str | None:
    """Why ``record`` is not one CSV row of ``width`` fields, or None when it is."""
    if b'"' not in record:
        fields = record.count(sep) + 1
    else:
        text = record.decode("utf-8", errors="replace")
        try:
            rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=separator, strict=True))
        except csv.Error as exc:
            return f"csv: {exc}"
        if len(rows) != 1:
            return "csv: unclosed quote"
        fields = len(rows[0])
    return None if fields == width else f"csv: expected {width} fields, got {fields}"


def _csv_batch(
    records: list[bytes], positions: list[str], dead: list[DeadLetter], header: list[str], separator: str, source: str
) -> RawBatch:
    """Parse well-formed records together with polars (Python's csv module if polars reads them otherwise)."""
    try:
        frame = pl.read_csv(
            io.BytesIO(b"\n".join(records)),
            has_header=False,
            new_columns=header,
            separator=separator,
            infer_schema=False,
            encoding="utf8-lossy",
        )
        if frame.height != len(records) or frame.width != len(header):
            raise ValueError("polars read the records differently")
    except Exception:  # noqa: BLE001 - any failure means: parse these records one by one
        rows = [
            next(csv.reader(io.StringIO(r.decode("utf-8", errors="replace"), newline=""), delimiter=separator))
            for r in records
        ]
        frame = pl.DataFrame(
            {name: [row[i] or None for row in rows] for i, name in enumerate(header)},
            schema={name: pl.String for name in header},
        )
    return _as_raw_frame(frame, pl.Series("_pos", positions, dtype=pl.String), source, dead)


def _parquet_batches(path: str, batch_size: int) -> Iterator[RawBatch]:
    """Parquet a slice of rows at a time (polars reads only the row groups a slice needs)."""
    scan = pl.scan_parquet(path)
    rows = scan.select(pl.len()).collect().item()
    for offset in range(0, rows, batch_size):
        frame = scan.slice(offset, batch_size).collect()
        positions = pl.int_range(offset + 1, offset + 1 + frame.height, eager=True).cast(pl.String)
        yield _as_raw_frame(frame, positions, source_name(path), [])
