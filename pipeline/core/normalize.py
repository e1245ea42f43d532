"""Parse and validate a raw batch into typed event frames and dead letters.

Pure: a ``RawBatch`` (one String column per native field) in, a ``Normalized`` out.
Every record either becomes one or more typed events or one dead letter with a
reason; nothing is dropped silently. CDRs are exploded into the call events they
imply, with the same keys as live events, so a CDR and the live events of one
call never count twice. Work is done on whole columns (polars), not per record.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import polars as pl

from pipeline.core.pii import CallerHasher, mask_normalized, normalized_numbers, scrub_raw
from pipeline.core.records import (
    AGENT_STATES,
    CALL_EVENTS,
    OUTCOMES,
    QUALITY_DIRECTIONS,
    QUALITY_MEASURES,
    RECORD_TYPES,
    DeadLetter,
    RawBatch,
)

CALL_EVENT_SCHEMA: dict[str, pl.DataType] = {
    "_row": pl.Int64(),
    "call_id": pl.String(),
    "queue": pl.String(),
    "event": pl.String(),
    "ts": pl.Datetime("us", "UTC"),
    "agent_id": pl.String(),
    "caller_key": pl.String(),
    "caller_masked": pl.String(),
    "talk_s": pl.Float64(),
    "hold_s": pl.Float64(),
    "wrap_s": pl.Float64(),
    "case_id": pl.String(),
    "category": pl.String(),
    "resolved": pl.Boolean(),
    "source": pl.String(),
    "position": pl.String(),
}
AGENT_EVENT_SCHEMA: dict[str, pl.DataType] = {
    "_row": pl.Int64(),
    "agent_id": pl.String(),
    "ts": pl.Datetime("us", "UTC"),
    "state": pl.String(),
    "reason": pl.String(),
    "queues": pl.List(pl.String()),
    "source": pl.String(),
    "position": pl.String(),
}
QA_SCHEMA: dict[str, pl.DataType] = {
    "_row": pl.Int64(),
    "call_id": pl.String(),
    "agent_id": pl.String(),
    "score": pl.Float64(),
    "ts": pl.Datetime("us", "UTC"),
    "evaluator": pl.String(),
    "source": pl.String(),
    "position": pl.String(),
}
QUALITY_SCHEMA: dict[str, pl.DataType] = {
    "_row": pl.Int64(),
    "call_id": pl.String(),
    "leg": pl.String(),
    "direction": pl.String(),
    "ts": pl.Datetime("us", "UTC"),
    **{name: pl.Float64() for name in QUALITY_MEASURES},
    "vendor_score_kind": pl.String(),
    "trunk": pl.String(),
    "tags": pl.List(pl.String()),
    "source": pl.String(),
    "position": pl.String(),
}
DEAD_LETTER_SCHEMA: dict[str, pl.DataType] = {
    "source": pl.String(),
    "position": pl.String(),
    "reason": pl.String(),
    "raw": pl.String(),
}

_ID_FIELDS = (
    "type",
    "event",
    "call_id",
    "queue",
    "agent_id",
    "case_id",
    "category",
    "state",
    "reason",
    "outcome",
    "evaluator",
    "caller",
    "leg",
    "direction",
    "vendor_score_kind",
    "trunk",
)
_TIME_FIELDS = ("at", "offered_at", "answered_at", "ended_at")
_NUMBER_FIELDS = ("talk_s", "hold_s", "wrap_s", "score", *QUALITY_MEASURES)
# Where a quality measure can lie (None: unbounded); outside → dead letter with the reason.
_QUALITY_RANGES: dict[str, tuple[float | None, float | None]] = {
    "mos": (1.0, 5.0),
    "r_factor": (0.0, 100.0),
    "jitter_ms": (0.0, None),
    "loss_pct": (0.0, 100.0),
    "rtt_ms": (0.0, None),
}
_BOOL_FIELDS = ("resolved", "transferred")
_TRUE = ("true", "1", "yes", "y", "t")
_FALSE = ("false", "0", "no", "n", "f")
MAX_ID_LENGTH = 256


@dataclass(frozen=True, slots=True)
class Normalized:
    """Typed events of one batch, ready for the store, and what could not be used."""

    calls: pl.DataFrame
    agents: pl.DataFrame
    qa: pl.DataFrame
    quality: pl.DataFrame
    dead: pl.DataFrame
    records: int  # records read (usable or not), for accepted + duplicates + dead = read
    origin: pl.DataFrame  # _row, source, position, raw, caller, caller_key of the usable records

    def dead_letters_for(self, refused: pl.DataFrame) -> pl.DataFrame:
        """Dead letters for usable records refused later (``refused``: _row, reason)."""
        rows = refused.join(self.origin, on="_row", how="inner")
        return _dead_rows(rows.rename({"reason": "_reason"}))


def _blank_to_null(name: str) -> pl.Expr:
    s = pl.col(name).str.strip_chars()
    return pl.when(s == "").then(None).otherwise(s).alias(name)


def _parse_ts(name: str) -> pl.Expr:
    """ISO 8601 with an offset (any offset, ``Z`` too) or epoch seconds, as UTC."""
    s = pl.col(name)
    num = s.cast(pl.Float64, strict=False)
    finite = num.is_not_null() & num.is_finite() & (num.abs() < 1e12)
    epoch = pl.from_epoch((pl.when(finite).then(num).otherwise(None) * 1e6).cast(pl.Int64), time_unit="us")
    iso = s.str.to_datetime("%+", time_zone="UTC", strict=False, time_unit="us")
    return pl.when(finite).then(epoch.dt.replace_time_zone("UTC")).otherwise(iso).alias(f"{name}__t")


def _parse_number(name: str) -> pl.Expr:
    # Exports pad numbers ("  4.1"); the number is still meant.
    num = pl.col(name).str.strip_chars().cast(pl.Float64, strict=False)
    return pl.when(num.is_finite()).then(num).otherwise(None).alias(f"{name}__n")


def _parse_bool(name: str) -> pl.Expr:
    s = pl.col(name).str.to_lowercase()
    return pl.when(s.is_in(_TRUE)).then(True).when(s.is_in(_FALSE)).then(False).otherwise(None).alias(f"{name}__b")


def _bad(name: str, suffix: str) -> pl.Expr:
    """The raw field is present but did not parse."""
    return pl.col(name).is_not_null() & pl.col(f"{name}{suffix}").is_null()


# The latest time a record may carry (the clock plus max_future_s), a column while the
# reasons are found: the expression below then is the same for every batch, built once.
_LIMIT = "_limit"


@functools.cache
def _reason(max_future_s: float) -> pl.Expr:
    """The first reason a record can't be used, or null when it can (needs ``_LIMIT``)."""
    t = pl.col("type")
    call, cdr, agent, qa, quality = (t == "call"), (t == "cdr"), (t == "agent"), (t == "qa"), (t == "quality")
    limit = pl.col(_LIMIT)
    checks: list[tuple[pl.Expr, pl.Expr | str]] = [(t.is_null(), "missing field: type")]
    checks.append((~t.is_in(RECORD_TYPES), pl.format("unknown record type: {}", t.str.slice(0, 40))))
    for name in _ID_FIELDS:
        checks.append((pl.col(name).str.len_chars() > MAX_ID_LENGTH, f"field too long: {name}"))

    def need(cond: pl.Expr, fields: tuple[str, ...]) -> None:
        for f in fields:
            checks.append((cond & pl.col(f).is_null(), f"missing field: {f}"))

    need(call, ("event", "call_id", "queue", "at"))
    checks.append(
        (
            call & ~pl.col("event").is_in(CALL_EVENTS),
            pl.format("unknown call event: {}", pl.col("event").str.slice(0, 40)),
        )
    )
    need(cdr, ("call_id", "queue", "offered_at", "ended_at"))
    need(agent, ("agent_id", "state", "at"))
    checks.append(
        (
            agent & ~pl.col("state").is_in(AGENT_STATES),
            pl.format("unknown agent state: {}", pl.col("state").str.slice(0, 40)),
        )
    )
    need(qa, ("call_id", "agent_id", "score", "at"))
    for name in _TIME_FIELDS:
        checks.append((_bad(name, "__t"), f"bad timestamp (ISO 8601 with offset or epoch seconds): {name}"))
    for name in _NUMBER_FIELDS:
        checks.append((_bad(name, "__n"), f"not a number: {name}"))
    for name in ("talk_s", "hold_s", "wrap_s"):
        checks.append((pl.col(f"{name}__n") < 0, f"negative duration: {name}"))
    checks.append(((pl.col("score__n") < 0) | (pl.col("score__n") > 100), "score outside 0..100"))
    checks.extend(_quality_checks(quality))
    for name in _BOOL_FIELDS:
        checks.append((_bad(name, "__b"), f"not a boolean: {name}"))
    checks.append(
        (
            cdr & pl.col("outcome").is_not_null() & ~pl.col("outcome").is_in(OUTCOMES),
            pl.format("unknown outcome: {}", pl.col("outcome").str.slice(0, 40)),
        )
    )
    checks.append(
        (
            cdr & (pl.col("outcome") == "answered") & pl.col("answered_at").is_null(),
            "outcome answered without answered_at",
        )
    )
    checks.append((cdr & (pl.col("answered_at__t") < pl.col("offered_at__t")), "answered before offered"))
    checks.append(
        (
            cdr & (pl.col("ended_at__t") < pl.coalesce("answered_at__t", "offered_at__t")),
            "ended before answered or offered",
        )
    )
    for name in _TIME_FIELDS:
        checks.append(
            (
                pl.col(f"{name}__t") > limit,
                f"timestamp in the future (more than {max_future_s:g} s ahead of the clock): {name}",
            )
        )
    # The first failing check wins; coalesce evaluates the checks side by side,
    # which is far cheaper than one deeply nested when/then chain.
    reasons = [
        pl.when(cond.fill_null(False)).then(pl.lit(why) if isinstance(why, str) else why) for cond, why in checks
    ]
    expr = pl.coalesce(reasons)
    return expr.alias("_reason")


def _quality_checks(quality: pl.Expr) -> list[tuple[pl.Expr, pl.Expr | str]]:
    """Why a ``quality`` record can't be used: a key field missing, an unknown direction,
    a measure out of its range, no measure at all, a vendor score of no named kind."""
    checks: list[tuple[pl.Expr, pl.Expr | str]] = [
        (quality & pl.col(f).is_null(), f"missing field: {f}") for f in ("call_id", "leg", "direction", "at")
    ]
    checks.append(
        (
            quality & ~pl.col("direction").is_in(QUALITY_DIRECTIONS),
            pl.format("unknown quality direction (in or out): {}", pl.col("direction").str.slice(0, 40)),
        )
    )
    for name, (lo, hi) in _QUALITY_RANGES.items():
        n = pl.col(f"{name}__n")
        if hi is None:
            checks.append((quality & (n < lo), f"negative {name}"))
        else:
            checks.append((quality & ((n < lo) | (n > hi)), f"{name} outside {lo:g}..{hi:g}"))
    no_measure = pl.all_horizontal([pl.col(f"{m}__n").is_null() for m in QUALITY_MEASURES])
    checks.append((quality & no_measure, f"quality record without a measure ({', '.join(QUALITY_MEASURES)})"))
    checks.append(
        (
            quality & pl.col("vendor_score__n").is_not_null() & pl.col("vendor_score_kind").is_null(),
            "vendor_score without vendor_score_kind",
        )
    )
    return checks


def _name_list(name: str) -> pl.Expr:
    """``["a","b"]`` (JSON) or ``a,b`` as a list of names (queues, tags)."""
    s = pl.col(name).str.strip_chars().str.strip_chars("[]")
    parts = s.str.split(",").list.eval(pl.element().str.strip_chars().str.strip_chars('"').str.strip_chars())
    return (
        pl.when(pl.col(name).is_null())
        .then(None)
        .otherwise(parts.list.eval(pl.element().filter(pl.element() != "")))
        .alias(name)
    )


def _latest_time(now: datetime, max_future_s: float) -> datetime:
    """``now`` (UTC when naive) plus ``max_future_s``; the largest time if that is beyond it."""
    now = now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)
    try:
        return now + timedelta(seconds=max_future_s)
    except OverflowError:  # a limit past year 9999 (or infinite): no record is too far ahead
        return datetime.max.replace(tzinfo=UTC)


def normalize(batch: RawBatch, hasher: CallerHasher, now: datetime, max_future_s: float = 300.0) -> Normalized:
    """Validate ``batch``; ``now`` is the wall clock used for the future-timestamp check."""
    # A batch merged from several sources (RawBatch.concat) names each row's source in _src.
    src = pl.col("_src") if "_src" in batch.frame.columns else pl.lit(batch.source, dtype=pl.String)
    f = batch.frame.with_row_index("_row").with_columns(
        pl.col("_row").cast(pl.Int64), src.alias("_src"), *[_blank_to_null(n) for n in _ID_FIELDS]
    )
    limit = _latest_time(now, max_future_s)
    f = (
        f.with_columns(
            [_parse_ts(n) for n in _TIME_FIELDS]
            + [_parse_number(n) for n in _NUMBER_FIELDS]
            + [_parse_bool(n) for n in _BOOL_FIELDS]
            + [pl.lit(limit, dtype=pl.Datetime("us", "UTC")).alias(_LIMIT)]
        )
        .with_columns(_reason(max_future_s))
        .drop(_LIMIT)
    )

    # Normalize the callers in one vectorised pass; only the HMAC itself runs per distinct number.
    f = f.with_columns(normalized_numbers(pl.col("caller")).alias("_caller_n"))
    numbers = f.get_column("_caller_n").drop_nulls().unique().to_list()
    keys = {n: hasher.key_of_normalized(n) for n in numbers}
    masks = {n: mask_normalized(n) for n in numbers}
    f = f.with_columns(
        pl.col("_caller_n").replace_strict(keys, default=None, return_dtype=pl.String).alias("caller_key"),
        pl.col("_caller_n").replace_strict(masks, default=None, return_dtype=pl.String).alias("caller_masked"),
    ).drop("_caller_n")
    good = f.filter(pl.col("_reason").is_null())
    bad = f.filter(pl.col("_reason").is_not_null())
    dead = pl.concat([dead_letters_frame(batch.dead), _dead_rows(bad.rename({"_src": "source"}))])
    calls = pl.concat([_live_calls(good), _exploded_cdrs(good)], how="vertical")
    return Normalized(
        calls=calls,
        agents=_agent_events(good),
        qa=_qa_events(good),
        quality=_quality_events(good),
        dead=dead,
        records=batch.size,
        origin=good.select("_row", pl.col("_src").alias("source"), "_pos", "_raw", "caller", "caller_key"),
    )


def _call_frame(f: pl.DataFrame, event: pl.Expr, ts: pl.Expr, **cols: pl.Expr) -> pl.DataFrame:
    null_s, null_f = pl.lit(None, dtype=pl.String), pl.lit(None, dtype=pl.Float64)
    base: dict[str, pl.Expr] = {
        "_row": pl.col("_row"),
        "call_id": pl.col("call_id"),
        "queue": pl.col("queue"),
        "event": event,
        "ts": ts,
        "agent_id": pl.col("agent_id"),
        "caller_key": null_s,
        "caller_masked": null_s,
        "talk_s": null_f,
        "hold_s": null_f,
        "wrap_s": null_f,
        "case_id": pl.col("case_id"),
        "category": pl.col("category"),
        "resolved": pl.lit(None, dtype=pl.Boolean),
        "source": pl.col("_src"),
        "position": pl.col("_pos"),
    }
    base.update(cols)
    if f.height == 0:
        return pl.DataFrame(schema=CALL_EVENT_SCHEMA)
    out = f.select([e.alias(k) for k, e in base.items()])
    return out.cast(CALL_EVENT_SCHEMA)  # type: ignore[arg-type]


def _live_calls(good: pl.DataFrame) -> pl.DataFrame:
    live = good.filter(pl.col("type") == "call")
    return _call_frame(
        live,
        pl.col("event"),
        pl.col("at__t"),
        caller_key=pl.col("caller_key"),
        caller_masked=pl.col("caller_masked"),
        talk_s=pl.col("talk_s__n"),
        hold_s=pl.col("hold_s__n"),
        wrap_s=pl.col("wrap_s__n"),
        resolved=pl.col("resolved__b"),
    )


def _exploded_cdrs(good: pl.DataFrame) -> pl.DataFrame:
    """A CDR is the events it implies: offered, then its outcome, then ended/transferred."""
    cdr = good.filter(pl.col("type") == "cdr")
    if cdr.height == 0:  # a live stream's batches: none of the frames below costs its filters
        return pl.DataFrame(schema=CALL_EVENT_SCHEMA)
    cdr = cdr.with_columns(
        pl.coalesce(
            pl.col("outcome"),
            pl.when(pl.col("answered_at__t").is_not_null()).then(pl.lit("answered")).otherwise(pl.lit("abandoned")),
        ).alias("_outcome")
    )
    answered = cdr.filter(pl.col("_outcome") == "answered")
    talk = pl.coalesce(
        pl.col("talk_s__n"),
        (
            (pl.col("ended_at__t") - pl.col("answered_at__t")).dt.total_microseconds() / 1e6
            - pl.col("hold_s__n").fill_null(0)
        ).clip(lower_bound=0),
    )
    frames = [
        _call_frame(
            cdr,
            pl.lit("offered"),
            pl.col("offered_at__t"),
            caller_key=pl.col("caller_key"),
            caller_masked=pl.col("caller_masked"),
            agent_id=pl.lit(None, dtype=pl.String),
        ),
        _call_frame(answered, pl.lit("answered"), pl.col("answered_at__t")),
        _call_frame(
            answered,
            pl.lit("ended"),
            pl.col("ended_at__t"),
            talk_s=talk,
            hold_s=pl.col("hold_s__n"),
            wrap_s=pl.col("wrap_s__n"),
            resolved=pl.col("resolved__b"),
        ),
        _call_frame(
            cdr.filter(pl.col("_outcome") != "answered"),
            pl.col("_outcome"),
            pl.col("ended_at__t"),
            agent_id=pl.lit(None, dtype=pl.String),
        ),
        _call_frame(
            answered.filter(pl.col("transferred__b").fill_null(False)),
            pl.lit("transferred"),
            pl.col("ended_at__t"),
        ),
    ]
    return pl.concat(frames, how="vertical")


def _of_type(good: pl.DataFrame, kind: str, schema: dict[str, pl.DataType], *columns: pl.Expr) -> pl.DataFrame:
    """The rows of one record type as ``columns`` cast to ``schema`` (an empty frame of it if none)."""
    rows = good.filter(pl.col("type") == kind)
    if rows.height == 0:
        return pl.DataFrame(schema=schema)
    picked = rows.select(*columns, pl.col("_src").alias("source"), pl.col("_pos").alias("position"))
    return picked.cast(schema)  # type: ignore[arg-type]


def _agent_events(good: pl.DataFrame) -> pl.DataFrame:
    return _of_type(
        good,
        "agent",
        AGENT_EVENT_SCHEMA,
        pl.col("_row"),
        pl.col("agent_id"),
        pl.col("at__t").alias("ts"),
        pl.col("state"),
        pl.col("reason"),
        _name_list("queues"),
    )


def _qa_events(good: pl.DataFrame) -> pl.DataFrame:
    return _of_type(
        good,
        "qa",
        QA_SCHEMA,
        pl.col("_row"),
        pl.col("call_id"),
        pl.col("agent_id"),
        pl.col("score__n").alias("score"),
        pl.col("at__t").alias("ts"),
        pl.col("evaluator"),
    )


def _quality_events(good: pl.DataFrame) -> pl.DataFrame:
    return _of_type(
        good,
        "quality",
        QUALITY_SCHEMA,
        pl.col("_row"),
        pl.col("call_id"),
        pl.col("leg"),
        pl.col("direction"),
        pl.col("at__t").alias("ts"),
        *[pl.col(f"{m}__n").alias(m) for m in QUALITY_MEASURES],
        pl.col("vendor_score_kind"),
        pl.col("trunk"),
        _name_list("tags"),
    )


def _dead_rows(rows: pl.DataFrame) -> pl.DataFrame:
    """Dead letters from parsed rows (source, _pos, _reason, _raw, caller, caller_key).

    Only records that failed get here, so the per-record work on ``raw`` (never
    keep a caller number in the clear, not even here) costs valid records nothing.
    """
    raws = [scrub_raw(raw, caller, key) for raw, caller, key in rows.select("_raw", "caller", "caller_key").iter_rows()]
    return pl.DataFrame(
        {
            "source": rows.get_column("source"),
            "position": rows.get_column("_pos"),
            "reason": rows.get_column("_reason"),
            "raw": pl.Series(raws, dtype=pl.String),
        },
        schema=DEAD_LETTER_SCHEMA,
    )


def dead_letters_frame(letters: list[DeadLetter]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "source": [d.source for d in letters],
            "position": [d.position for d in letters],
            "reason": [d.reason for d in letters],
            "raw": [d.raw for d in letters],
        },
        schema=DEAD_LETTER_SCHEMA,
    )
