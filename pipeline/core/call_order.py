"""What a batch's call events do against what is already stored of their calls.

Plain functions over polars frames: the batch's call events, and ``known``, the
``call_state`` rows of the batch's calls (``sql/ingest/batch_call_state.sql``). That one row
per call is enough because a call stores at most one event of each kind and
``call_state`` holds each kind's time (``offered_at``, ``answered_at``, ...).

They run in polars rather than as SQL over the registered frames: for a batch of 2,000
events DuckDB's planning and its scans of the registered frames cost about 25 ms, these
about 7 (the Kafka worker's latency is about two batches' cost).
"""

from __future__ import annotations

import polars as pl

from pipeline.core.records import CALL_EVENTS

KEY = ["call_id", "queue"]
# call_state's column per event kind: offered -> offered_at, ...
KIND_TIMES = tuple(f"{kind}_at" for kind in CALL_EVENTS)
# the kinds that follow the offer
LATER_TIMES = tuple(f"{kind}_at" for kind in CALL_EVENTS if kind != "offered")


def new_call_events(calls: pl.DataFrame, known: pl.DataFrame) -> pl.DataFrame:
    """The batch's call events whose key (call_id, queue, event) is not stored yet: the
    time of their kind in ``known`` is not set."""
    stored = known.select(*KEY, *(pl.col(c).alias(f"_known_{c}") for c in KIND_TIMES))
    kind_time = pl.lit(None)
    for kind in CALL_EVENTS:
        kind_time = pl.when(pl.col("event") == kind).then(pl.col(f"_known_{kind}_at")).otherwise(kind_time)
    return (
        calls.join(stored, on=KEY, how="left", maintain_order="left").filter(kind_time.is_null()).select(calls.columns)
    )


def call_order_violations(new_calls: pl.DataFrame, known: pl.DataFrame) -> pl.DataFrame:
    """(_row, reason) of the new call events that contradict their call's order, stored or
    in this batch: an outcome before the offer, an end before the answer, an offer after
    an event stored earlier. One reason per row, in that order of precedence."""
    ts_type = new_calls.schema["ts"]
    events = new_calls.select("_row", *KEY, "event", "ts")

    def earliest(kind: str) -> pl.DataFrame:
        """Per call, the earliest time of ``kind``, stored or new."""
        stored = known.select(*KEY, pl.col(f"{kind}_at").cast(ts_type).alias("t")).drop_nulls("t")
        new = events.filter(pl.col("event") == kind).select(*KEY, pl.col("ts").alias("t"))
        return pl.concat([stored, new]).group_by(KEY).agg(pl.col("t").min())

    # min_horizontal skips nulls: the first stored event that is not the offer
    later = known.select(*KEY, pl.min_horizontal(LATER_TIMES).cast(ts_type).alias("t")).drop_nulls("t")
    before_offer = (
        events.join(earliest("offered"), on=KEY)
        .filter((pl.col("event") != "offered") & (pl.col("ts") < pl.col("t")))
        .select("_row", (pl.col("event") + " before offered").alias("reason"))
    )
    before_answer = (
        events.join(earliest("answered"), on=KEY)
        .filter((pl.col("event") == "ended") & (pl.col("ts") < pl.col("t")))
        .select("_row", pl.lit("ended before answered").alias("reason"))
    )
    offer_after = (
        events.join(later, on=KEY)
        .filter((pl.col("event") == "offered") & (pl.col("ts") > pl.col("t")))
        .select("_row", pl.lit("offered after the call's stored outcome").alias("reason"))
    )
    found = pl.concat([before_offer, before_answer, offer_after])
    return found.unique(subset=["_row"], keep="first", maintain_order=True).sort("_row")
