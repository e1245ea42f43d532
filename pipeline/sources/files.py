"""File sources: JSON lines, CSV and Parquet, read in batches; ``-`` is standard input.

Lifecycle: ``read_batches(path, ...)`` opens the file when iteration starts,
yields one ``RawBatch`` per ``batch_size`` records and closes it at the end.
Records of any type may be mixed in one file (each has a ``type`` field).
JSON lines are parsed a batch at a time with polars; only a batch that holds a
malformed line is parsed line by line, to dead-letter exactly the bad lines.
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterator
from typing import IO, Any

import polars as pl

from pipeline.pii import mask_phone_like
from pipeline.records import NATIVE_FIELDS, RAW_SCHEMA, DeadLetter, Parsed, RawBatch

FORMATS = ("jsonl", "csv", "parquet")


def detect_file_format(path: str) -> str:
    name = path.lower()
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    if name.endswith((".csv", ".tsv")):
        return "csv"
    return "jsonl"


def source_name(path: str) -> str:
    return "stdin" if path == "-" else f"file:{path}"


def read_batches(path: str, batch_size: int = 50_000, fmt: str | None = None) -> Iterator[RawBatch]:
    """Batches of raw records from one file (``-``: standard input, JSON lines)."""
    fmt = fmt or detect_file_format(path)
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
    lines: list[bytes] = []
    positions: list[str] = []
    for number, line in enumerate(handle, start=1):
        line = line.strip()
        if not line:
            continue
        lines.append(line)
        positions.append(str(number))
        if len(lines) >= batch_size:
            yield jsonl_batch(lines, positions, source)
            lines, positions = [], []
    if lines:
        yield jsonl_batch(lines, positions, source)


def jsonl_batch(lines: list[bytes], positions: list[str], source: str) -> RawBatch:
    """One batch from JSON-lines values (file lines or Kafka message values), parsed together."""
    try:
        frame = pl.read_ndjson(io.BytesIO(b"\n".join(lines)), schema=RAW_SCHEMA)
        if frame.height != len(lines):
            raise ValueError("row count differs from line count")
        if any(not line.startswith(b"{") for line in lines):
            raise ValueError("a line is not a JSON object")
    except Exception:  # noqa: BLE001 - any failure means: find the bad lines one by one
        return _jsonl_batch_line_by_line(lines, positions, source)
    texts = [line.decode("utf-8", errors="replace") for line in lines]
    frame = frame.with_columns(
        pl.Series("_pos", positions, dtype=pl.String),
        pl.Series("_raw", texts, dtype=pl.String),
    )
    return RawBatch(source=source, frame=frame)


def _jsonl_batch_line_by_line(lines: list[bytes], positions: list[str], source: str) -> RawBatch:
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


def _as_raw_frame(frame: pl.DataFrame, first_position: int, source: str) -> RawBatch:
    """Keep the native columns (as strings), fill the missing ones, add position and raw text."""
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
    raw = [json.dumps(row, default=str, separators=(",", ":")) for row in frame.iter_rows(named=True)]
    out = frame.select(cols).with_columns(
        pl.Series("_pos", [str(first_position + i) for i in range(frame.height)], dtype=pl.String),
        pl.Series("_raw", raw, dtype=pl.String),
    )
    return RawBatch(source=source, frame=out)


def _csv_batches(path: str, batch_size: int) -> Iterator[RawBatch]:
    separator = "\t" if path.lower().endswith(".tsv") else ","
    frame = pl.read_csv(path, infer_schema=False, separator=separator)
    for offset in range(0, frame.height, batch_size):
        # Line numbers: the header is line 1.
        yield _as_raw_frame(frame.slice(offset, batch_size), offset + 2, source_name(path))


def _parquet_batches(path: str, batch_size: int) -> Iterator[RawBatch]:
    frame = pl.read_parquet(path)
    for offset in range(0, frame.height, batch_size):
        yield _as_raw_frame(frame.slice(offset, batch_size), offset + 1, source_name(path))
