"""CSV/TSV exports of any other ACD → native ``cdr`` records, driven by a TOML mapping.

A mapping (``mappings/*.toml``; see ``anonymous_bank.toml`` for a commented one) says:

- ``delimiter``, ``header`` (or ``columns``), ``timezone`` (of the export's naive
  local times; when left out, the site's time zone from the config applies, and
  UTC if there is none) and ``clip`` (answered ≥ offered, ended ≥ answered);
- ``[fields]``: native field ← column, or a list of columns joined with ``-``
  (for a call id that is only unique together with another column);
- ``[absent]``: per column, values that mean "no value" (``customer_id = ["0"]``);
- ``[time]``: ``format`` of time columns, ``absent`` values (``0:00:00``),
  ``anchor`` (the time column the row's date belongs to: a time more than
  ``rollover_after_s`` before the anchor is on the next day, so a wait across
  midnight rolls over) and ``requires`` (``q_exit = "q_start"``: q_exit counts
  only when q_start is present);
- ``[date]``: a date ``column`` and its ``format``, combined with every time
  column (leave out for time columns that hold full date-times);
- ``[outcome]``: the ``column``, ``map`` of its values to ``answered`` /
  ``abandoned`` / ``exited`` and values to ``skip`` (rows that are not calls);
- ``[times.<outcome>]``: for each of ``offered_at`` / ``answered_at`` /
  ``ended_at`` the columns to take it from, first present wins.

Rules that are not configurable: a row without ``offered_at`` never reached a
queue and is skipped (counted as ``skipped:not offered``); calls no agent answered
carry no ``agent_id`` / ``talk_s`` / ``hold_s`` / ``wrap_s``; times are written as
ISO 8601 with the site offset (a local time that does not exist in the zone is a
dead letter, an ambiguous one takes the earlier instant). Rows with the wrong
number of columns, an unknown outcome value or an unreadable time are dead letters.
Durations are passed through as numbers (validation judges them later).
"""

from __future__ import annotations

import csv
import tomllib
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import polars as pl

from pipeline.core.pii import mask_phone_like
from pipeline.core.records import CDR_FIELDS, OUTCOMES, DeadLetter, Parsed

Item = Parsed | DeadLetter

MAPPINGS_DIR = Path(__file__).with_name("mappings")
TIME_FIELDS = ("offered_at", "answered_at", "ended_at")
AGENT_ONLY = ("agent_id", "talk_s", "hold_s", "wrap_s")
# What a mapping's [fields] may fill: the cdr's fields but its times (TIME_FIELDS) and outcome.
VALUE_FIELDS = tuple(f for f in CDR_FIELDS if f not in (*TIME_FIELDS, "outcome"))
NUMERIC_FIELDS = frozenset({"talk_s", "hold_s", "wrap_s"})
_CHUNK = 100_000


class MappingError(ValueError):
    """A mapping file problem, naming the key."""


@dataclass(frozen=True, slots=True)
class MappingSpec:
    name: str
    delimiter: str = ","
    header: bool = True
    columns: tuple[str, ...] = ()
    timezone: str | None = None  # None: the site's (options["timezone"]), else UTC
    clip: bool = True
    fields: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    absent: Mapping[str, frozenset[str]] = field(default_factory=dict)
    time_format: str = "%Y-%m-%d %H:%M:%S"
    time_absent: frozenset[str] = frozenset()
    anchor: str | None = None
    rollover_after_s: int = 12 * 3600
    requires: Mapping[str, str] = field(default_factory=dict)
    date_column: str | None = None
    date_format: str = "%Y-%m-%d"
    outcome_column: str | None = None
    outcome_map: Mapping[str, str] = field(default_factory=dict)
    skip: frozenset[str] = frozenset()
    times: Mapping[str, Mapping[str, tuple[str, ...]]] = field(default_factory=dict)

    @property
    def time_columns(self) -> tuple[str, ...]:
        cols = {c for per in self.times.values() for cs in per.values() for c in cs}
        if self.anchor:
            cols.add(self.anchor)
        return tuple(sorted(cols))


def _strs(value: Any, key: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise MappingError(f"{key}: expected a string or a list of strings")


def load_mapping(source: str | Path | Mapping[str, Any]) -> MappingSpec:
    """A mapping from a TOML file, a bare name in ``mappings/``, or a parsed dict."""
    if isinstance(source, Mapping):
        doc, name = dict(source), str(source.get("name", "mapping"))
    else:
        path = Path(source)
        if not path.suffix and not path.exists():
            path = MAPPINGS_DIR / f"{path.name}.toml"
        try:
            doc = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise MappingError(f"{path}: {exc}") from exc
        name = str(doc.get("name", path.stem))
    tz = None if doc.get("timezone") is None else str(doc["timezone"])
    try:
        if tz is not None:
            ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise MappingError(f"timezone: unknown zone {doc.get('timezone')!r}") from exc
    fields = {k: _strs(v, f"fields.{k}") for k, v in dict(doc.get("fields", {})).items()}
    for key in fields:
        if key not in VALUE_FIELDS:
            raise MappingError(f"fields.{key}: not a cdr value field ({', '.join(VALUE_FIELDS)})")
    for key in ("call_id", "queue"):
        if key not in fields:
            raise MappingError(f"fields.{key}: required")
    time = dict(doc.get("time", {}))
    date = dict(doc.get("date", {}))
    outcome = dict(doc.get("outcome", {}))
    omap = {str(k): str(v) for k, v in dict(outcome.get("map", {})).items()}
    for k, v in omap.items():
        if v not in OUTCOMES:
            raise MappingError(f"outcome.map.{k}: {v!r} is not one of {', '.join(OUTCOMES)}")
    times: dict[str, dict[str, tuple[str, ...]]] = {}
    for out, per in dict(doc.get("times", {})).items():
        if out not in OUTCOMES:
            raise MappingError(f"times.{out}: not an outcome ({', '.join(OUTCOMES)})")
        times[out] = {}
        for key, cols in dict(per).items():
            if key not in TIME_FIELDS:
                raise MappingError(f"times.{out}.{key}: not one of {', '.join(TIME_FIELDS)}")
            times[out][key] = _strs(cols, f"times.{out}.{key}")
        if "offered_at" not in times[out] or "ended_at" not in times[out]:
            raise MappingError(f"times.{out}: needs offered_at and ended_at")
    if not times:
        raise MappingError("times: at least one outcome needs its time columns")
    for out in set(omap.values()):
        if out not in times:
            raise MappingError(f"times.{out}: outcome.map produces {out!r} but has no times")
    return MappingSpec(
        name=name,
        delimiter=str(doc.get("delimiter", ",")).replace("\\t", "\t"),
        header=bool(doc.get("header", True)),
        columns=_strs(doc["columns"], "columns") if "columns" in doc else (),
        timezone=tz,
        clip=bool(doc.get("clip", True)),
        fields=fields,
        absent={k: frozenset(_strs(v, f"absent.{k}")) for k, v in dict(doc.get("absent", {})).items()},
        time_format=str(time.get("format", "%Y-%m-%d %H:%M:%S")),
        time_absent=frozenset(_strs(time.get("absent", []), "time.absent")),
        anchor=time.get("anchor"),
        rollover_after_s=int(time.get("rollover_after_s", 12 * 3600)),
        requires={str(k): str(v) for k, v in dict(time.get("requires", {})).items()},
        date_column=date.get("column"),
        date_format=str(date.get("format", "%Y-%m-%d")),
        outcome_column=outcome.get("column"),
        outcome_map=omap,
        skip=frozenset(_strs(outcome.get("skip", []), "outcome.skip")),
        times=times,
    )


class MappedReader:
    """Reads delimited rows with a mapping; ``stats`` counts calls by outcome and skips."""

    def __init__(self, spec: MappingSpec, source: str = "mapped", site_timezone: str | None = None) -> None:
        self.spec = spec
        self.source = source
        self.stats: Counter[str] = Counter()
        # the mapping's own zone wins; a mapping without one takes the site's
        self._tz = spec.timezone or site_timezone or "UTC"
        ZoneInfo(self._tz)

    def parse(self, lines: Iterable[tuple[str, str]]) -> Iterator[Item]:
        spec = self.spec
        columns: tuple[str, ...] | None = spec.columns or None
        wrong_header: str | None = None
        positions: list[str] = []
        raws: list[str] = []
        rows: list[list[str]] = []
        for position, line in lines:
            text = line.rstrip("\r\n")
            if not text.strip():
                continue
            try:
                values = next(csv.reader([text], delimiter=spec.delimiter, strict=True))
            except csv.Error as exc:
                yield self._dead(position, text, f"unreadable row: {exc}")
                continue
            if columns is None:
                columns = tuple(v.strip() for v in values)
                missing = self.missing_columns(columns)
                if missing:  # not the export this mapping is for: nothing here is usable
                    wrong_header = f"header lacks columns {missing} of mapping {spec.name!r}"
                    yield self._dead(position, text, wrong_header)
                continue
            if wrong_header is not None:
                yield self._dead(position, text, wrong_header)
                continue
            if len(values) != len(columns):
                yield self._dead(position, text, f"{len(values)} columns, header has {len(columns)}")
                continue
            positions.append(position)
            raws.append(text)
            rows.append(values)
            if len(rows) >= _CHUNK:
                yield from self._rows(columns, positions, raws, rows)
                positions, raws, rows = [], [], []
        if rows and columns is not None:
            yield from self._rows(columns, positions, raws, rows)

    def missing_columns(self, header: Iterable[str]) -> list[str]:
        """The columns this mapping reads that ``header`` lacks (sorted; empty: it fits)."""
        return sorted(self._needed() - {c.strip() for c in header})

    def _needed(self) -> set[str]:
        spec = self.spec
        cols = {c for cs in spec.fields.values() for c in cs} | set(spec.time_columns)
        cols |= set(spec.requires) | set(spec.requires.values())
        if spec.date_column:
            cols.add(spec.date_column)
        if spec.outcome_column:
            cols.add(spec.outcome_column)
        return cols

    def _rows(
        self,
        columns: tuple[str, ...],
        positions: list[str],
        raws: list[str],
        rows: list[list[str]],
    ) -> Iterator[Item]:
        frame = pl.DataFrame(rows, schema=list(columns), orient="row")
        frame = frame.with_columns(pl.Series("_pos", positions), pl.Series("_raw", raws))
        yield from self._frame(frame)

    def frame_items(self, frame: pl.DataFrame) -> Iterator[Item]:
        """Map a frame of String columns (plus ``_pos`` and ``_raw``) directly."""
        yield from self._frame(frame)

    def _frame(self, frame: pl.DataFrame) -> Iterator[Item]:
        spec = self.spec
        strip = [pl.col(c).str.strip_chars() for c in self._needed()]
        frame = frame.with_columns(strip)
        # outcome
        if spec.outcome_column:
            raw_out = pl.col(spec.outcome_column)
            frame = frame.with_columns(
                _skip=raw_out.is_in(list(spec.skip)),
                _outcome=raw_out.replace_strict(spec.outcome_map, default=None),
            )
        else:
            frame = frame.with_columns(_skip=pl.lit(False), _outcome=pl.lit("answered"))
        # times: absent → null; unreadable → flagged; rolled over relative to the anchor
        exprs = []
        bad = []
        for col in spec.time_columns:
            value = pl.col(col)
            absent = value.is_null() | value.is_in(list(spec.time_absent)) | (value == "")
            text = pl.concat_str([pl.col(spec.date_column), value], separator=" ") if spec.date_column else value
            fmt = f"{spec.date_format} {spec.time_format}" if spec.date_column else spec.time_format
            parsed = text.str.strptime(pl.Datetime("us"), fmt, strict=False)
            exprs.append(pl.when(absent).then(None).otherwise(parsed).alias(f"_t_{col}"))
            bad.append(pl.when(~absent & parsed.is_null()).then(pl.lit(col)).otherwise(None))
        frame = frame.with_columns(exprs)
        frame = frame.with_columns(_bad=pl.concat_list(bad).list.drop_nulls().list.first())
        for dependent, required in spec.requires.items():
            frame = frame.with_columns(
                pl.when(pl.col(f"_t_{required}").is_null())
                .then(None)
                .otherwise(pl.col(f"_t_{dependent}"))
                .alias(f"_t_{dependent}")
            )
        if spec.anchor:
            anchor = pl.col(f"_t_{spec.anchor}")
            limit = pl.duration(seconds=spec.rollover_after_s)
            frame = frame.with_columns(
                [
                    pl.when((anchor - pl.col(f"_t_{c}")) > limit)
                    .then(pl.col(f"_t_{c}") + pl.duration(days=1))
                    .otherwise(pl.col(f"_t_{c}"))
                    .alias(f"_t_{c}")
                    for c in spec.time_columns
                    if c != spec.anchor
                ]
            )
        # offered / answered / ended per outcome: first present column wins
        for name in TIME_FIELDS:
            branches: Any = None
            for out, per in spec.times.items():
                cols = per.get(name)
                if not cols:
                    continue
                value = pl.coalesce([pl.col(f"_t_{c}") for c in cols])
                cond = pl.col("_outcome") == out
                branches = (pl.when(cond) if branches is None else branches.when(cond)).then(value)
            expr = branches.otherwise(None) if branches is not None else pl.lit(None)
            frame = frame.with_columns(expr.cast(pl.Datetime("us")).alias(name))
        frame = frame.with_columns(answered_at=pl.when(pl.col("_outcome") == "answered").then(pl.col("answered_at")))
        if spec.clip:
            frame = frame.with_columns(
                answered_at=pl.when(pl.col("answered_at") < pl.col("offered_at"))
                .then(pl.col("offered_at"))
                .otherwise(pl.col("answered_at"))
            )
            start = pl.coalesce(["answered_at", "offered_at"])
            frame = frame.with_columns(
                ended_at=pl.when(pl.col("ended_at") < start).then(start).otherwise(pl.col("ended_at"))
            )
        zoned = []
        for name in TIME_FIELDS:
            local = pl.col(name).dt.replace_time_zone(self._tz, ambiguous="earliest", non_existent="null")
            zoned += [
                local.dt.strftime("%Y-%m-%dT%H:%M:%S%:z").alias(f"_iso_{name}"),
                (pl.col(name).is_not_null() & local.is_null()).alias(f"_gap_{name}"),
            ]
        frame = frame.with_columns(zoned)
        # value fields
        values = []
        for name, cols in spec.fields.items():
            parts = [
                pl.when(pl.col(c).is_in(list(spec.absent.get(c, ())))).then(None).otherwise(pl.col(c)) for c in cols
            ]
            expr = parts[0] if len(parts) == 1 else pl.concat_str(parts, separator="-")
            values.append(pl.when(expr == "").then(None).otherwise(expr).alias(f"_v_{name}"))
        frame = frame.with_columns(values)
        keep = ["_pos", "_raw", "_skip", "_outcome", "_bad"]
        keep += [f"_iso_{n}" for n in TIME_FIELDS] + [f"_gap_{n}" for n in TIME_FIELDS]
        keep += [f"_v_{n}" for n in spec.fields]
        out_col = spec.outcome_column
        if out_col:
            keep.append(out_col)
        for row in frame.select(keep).iter_rows(named=True):
            item = self._record(row, out_col)
            if item is not None:
                yield item

    def _record(self, row: dict[str, Any], out_col: str | None) -> Item | None:
        pos, raw = row["_pos"], row["_raw"]
        if row["_skip"]:
            self.stats[f"skipped:{row[out_col] if out_col else '?'}"] += 1
            return None
        outcome = row["_outcome"]
        if outcome is None:
            value = row[out_col] if out_col else None
            return self._dead(pos, raw, f"unknown outcome value {str(value)[:40]!r}")
        if row["_bad"] is not None:
            return self._dead(pos, raw, f"unreadable time in column {row['_bad']!r}")
        for name in TIME_FIELDS:
            if row[f"_gap_{name}"]:
                return self._dead(pos, raw, f"{name} does not exist in {self._tz}")
        if row["_iso_offered_at"] is None:
            self.stats["skipped:not offered"] += 1
            return None
        if row["_iso_ended_at"] is None:
            return self._dead(pos, raw, f"{outcome} call without an end time")
        if outcome == "answered" and row["_iso_answered_at"] is None:
            return self._dead(pos, raw, "answered call without an answer time")
        record: dict[str, Any] = {"type": "cdr", "outcome": outcome}
        for name in TIME_FIELDS:
            if row[f"_iso_{name}"] is not None:
                record[name] = row[f"_iso_{name}"]
        for name in self.spec.fields:
            value = row[f"_v_{name}"]
            if value is None or (outcome != "answered" and name in AGENT_ONLY):
                continue
            record[name] = _number(value) if name in NUMERIC_FIELDS else value
        self.stats[outcome] += 1
        return Parsed(pos, raw, record)

    def _dead(self, position: str, raw: str, reason: str) -> DeadLetter:
        self.stats["dead"] += 1
        return DeadLetter(self.source, position, mask_phone_like(raw), reason)


def _number(value: str) -> int | float | str:
    try:
        return int(value)
    except ValueError:
        try:
            return float(value)
        except ValueError:
            return value


def read_mapped_file(
    path: str | Path,
    mapping: str | Path | Mapping[str, Any] | MappingSpec,
    source: str | None = None,
) -> tuple[list[Item], Counter[str]]:
    """Read a whole export file: its items and the counts (a convenience for replays)."""
    spec = mapping if isinstance(mapping, MappingSpec) else load_mapping(mapping)
    path = Path(path)
    reader = MappedReader(spec, source or path.name)
    with path.open(encoding="utf-8", newline="") as handle:
        lines = ((f"{path.name}:{i}", line) for i, line in enumerate(handle, start=1))
        items = list(reader.parse(lines))
    return items, reader.stats


def parse_mapped(lines: Iterable[tuple[str, str]], source: str = "mapped", options: Any = None) -> Iterator[Item]:
    """Registry entry: ``options['mapping']`` is a mapping name, path, dict or spec."""
    opts = dict(options or {})
    mapping = opts.get("mapping")
    if mapping is None:
        raise MappingError("the mapped format needs a mapping (options['mapping'])")
    spec = mapping if isinstance(mapping, MappingSpec) else load_mapping(mapping)
    reader = MappedReader(spec, source, opts.get("timezone"))
    try:
        yield from reader.parse(lines)
    finally:
        if isinstance(opts.get("stats"), Counter):
            opts["stats"].update(reader.stats)
