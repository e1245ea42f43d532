"""Report builders: pure functions from polars frames (read by sql/reports/*.sql) to report frames.

The KPI formulas here are the polars twin of ``kpi_queue_ratios`` / ``kpi_agent_rollup``
in sql/schema/views.sql, applied to the same additive sums (``queue_interval``,
``agent_interval``); tests/integration/test_reports_vs_views.py checks they agree.
Undefined ratios (no calls) are null, never 0 or NaN. Days are calendar days in the
site's time zone, so a DST change day has 23 or 25 hours.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields

import polars as pl

from metrics.kpi.snapshot import QueueKpis
from metrics.kpi.staffing import staffing_need

QUEUE_SUMS = (
    "offered",
    "answered",
    "abandoned",
    "short_abandoned",
    "exited",
    "waiting",
    "answered_in_sl",
    "abandoned_in_sl",
    "answer_wait_s",
    "handled",
    "handle_s",
    "transferred",
    "repeat_eligible",
    "repeated",
)
AGENT_SUMS = (
    "handled",
    "handle_s",
    "ready_s",
    "busy_s",
    "wrap_s",
    "not_ready_s",
    "qa_count",
    "qa_sum",
)
# The snapshot's queue KPIs (the kpi_queue_* views' columns); ``waiting``, a live count,
# is not summed over days, so interval reports add it last.
QUEUE_KPIS: tuple[str, ...] = tuple(f.name for f in fields(QueueKpis) if f.name != "waiting")
AGENT_KPIS = (
    "handled",
    "aht_s",
    "ready_s",
    "busy_s",
    "wrap_s",
    "not_ready_s",
    "occupancy",
    "qa_score",
)
KINDS = ("interval", "daily", "queues", "agents", "cases", "quality", "quality-agents")


def ratio(num: pl.Expr, den: pl.Expr) -> pl.Expr:
    """num / den, null when den is not positive (cp_ratio)."""
    return pl.when(den > 0).then(num.cast(pl.Float64) / den.cast(pl.Float64)).otherwise(None)


def service_level(formula: pl.Expr) -> pl.Expr:
    """cp_service_level: short abandons are removed from offered first."""
    c = pl.col
    offered = c("offered") - c("short_abandoned")
    return (
        pl.when(formula == "negative")
        .then(ratio(c("answered_in_sl"), offered))
        .when(formula == "without_abandons")
        .then(ratio(c("answered_in_sl"), offered - c("abandoned_in_sl")))
        .when(formula == "positive")
        .then(ratio(c("answered_in_sl") + c("abandoned_in_sl"), offered))
        .when(formula == "answered_only")
        .then(ratio(c("answered_in_sl"), c("answered")))
        .otherwise(None)
    )


def queue_kpis(sums: pl.DataFrame, by: Sequence[str]) -> pl.DataFrame:
    """Sum the additive queue columns by ``by`` (which must include ``queue``), then the KPI ratios."""
    c = pl.col
    grouped = sums.group_by(list(by), maintain_order=True).agg(
        [c(n).sum() for n in QUEUE_SUMS] + [c("max_wait_s").max(), c("sl_formula").first()]
    )
    return (
        grouped.with_columns(
            service_level=service_level(c("sl_formula")),
            asa_s=ratio(c("answer_wait_s"), c("answered")),
            abandon_rate=ratio(c("abandoned") - c("short_abandoned"), c("offered") - c("short_abandoned")),
            aht_s=ratio(c("handle_s"), c("handled")),
            transfer_rate=ratio(c("transferred"), c("answered")),
            repeat_rate=ratio(c("repeated"), c("repeat_eligible")),
        )
        .with_columns(fcr=1 - c("repeat_rate"))
        .select(*by, *[k for k in QUEUE_KPIS if k not in by], "waiting")
    )


def with_local_day(frame: pl.DataFrame, tz: str, column: str = "interval_start") -> pl.DataFrame:
    """Add ``day`` (the site-local calendar date) and ``day_start`` (its local midnight, tz-aware)."""
    local = pl.col(column).dt.convert_time_zone(tz)
    return frame.with_columns(day=local.dt.date(), day_start=local.dt.truncate("1d"))


STAFFING_COLUMNS = ("agents_needed", "agents_staffed", "needed_why")


def interval_staffing(
    sums: pl.DataFrame, patience: pl.DataFrame, staffed: pl.DataFrame, targets: pl.DataFrame
) -> pl.DataFrame:
    """Per queue and interval: ``agents_needed`` to meet the queue's service-level target at
    the interval's own arrival rate and handle time (metrics.kpi.staffing, the live figure's
    maths on the interval's calls), ``needed_why`` where there is no number, and
    ``agents_staffed``, the mean agents logged in (null without agent events).

    ``sums``: reports/queue_intervals; ``patience``: reports/queue_interval_patience;
    ``staffed``: reports/queue_interval_staffed; ``targets``: kpi/queue_targets.
    """
    keys = ["queue", "interval_start"]
    waits = {(r["queue"], r["interval_start"]): r for r in patience.iter_rows(named=True)}
    goals = {r["queue"]: r for r in targets.iter_rows(named=True)}
    rows = []
    for r in sums.select(*keys, "interval_s", "offered", "short_abandoned", "handled", "handle_s").iter_rows(
        named=True
    ):
        w = waits.get((r["queue"], r["interval_start"]), {})
        t = goals[r["queue"]]
        need = staffing_need(
            offered=r["offered"],
            short_abandoned=r["short_abandoned"],
            abandoned=int(w.get("abandoned") or 0),
            aht_s=r["handle_s"] / r["handled"] if r["handled"] else None,
            wait_s=float(w.get("wait_s") or 0.0),
            period_s=float(r["interval_s"]),
            target_s=t["sl_threshold_s"],
            sl_target=t["target_service_level"],
            min_calls=t["min_calls"],
        )
        rows.append({"queue": r["queue"], "interval_start": r["interval_start"], "agents_needed": need.agents,
                     "needed_why": need.why})  # fmt: skip
    schema: dict[str, pl.DataType] = {
        "queue": pl.String(),
        "interval_start": sums.schema["interval_start"],
        "agents_needed": pl.Int64(),
        "needed_why": pl.String(),
    }
    needed = pl.DataFrame(rows, schema=schema)
    on_shift = staffed.select(*keys, pl.col("agents_staffed").cast(pl.Float64))
    return needed.join(on_shift, on=keys, how="left").select(*keys, *STAFFING_COLUMNS)


def interval_report(sums: pl.DataFrame, tz: str, staffing: pl.DataFrame | None = None) -> pl.DataFrame:
    """One row per queue and interval (the pipeline's interval length); with ``staffing``
    (``interval_staffing``), the agents needed beside the agents staffed."""
    out = queue_kpis(sums, ["queue", "interval_start", "interval_s"])
    if staffing is not None:
        out = out.join(staffing, on=["queue", "interval_start"], how="left")
    return out.with_columns(pl.col("interval_start").dt.convert_time_zone(tz)).sort("queue", "interval_start")


def daily_report(sums: pl.DataFrame, tz: str) -> pl.DataFrame:
    """One row per queue and site-local day; ``hours`` is the day's length (23 or 25 on DST days)."""
    days = with_local_day(sums, tz)
    out = queue_kpis(days, ["queue", "day", "day_start"])
    next_start = pl.col("day").dt.offset_by("1d").cast(pl.Datetime("us")).dt.replace_time_zone(tz)
    hours = (next_start - pl.col("day_start")).dt.total_seconds() / 3600
    return out.with_columns(hours=hours).rename({"day_start": "interval_start"}).sort("queue", "day")


def queues_report(sums: pl.DataFrame) -> pl.DataFrame:
    """One row per queue over the whole period."""
    return queue_kpis(sums, ["queue"]).sort("queue")


def agents_report(sums: pl.DataFrame) -> pl.DataFrame:
    """One scorecard row per agent over the period (calls by the interval they were offered in)."""
    c = pl.col
    g = sums.group_by("agent_id").agg([c(n).sum() for n in AGENT_SUMS])
    return (
        g.with_columns(
            aht_s=ratio(c("handle_s"), c("handled")),
            occupancy=ratio(c("busy_s") + c("wrap_s"), c("busy_s") + c("wrap_s") + c("ready_s")),
            qa_score=ratio(c("qa_sum"), c("qa_count")),
        )
        .select("agent_id", *AGENT_KPIS, "qa_count")
        .sort("agent_id")
    )


def cases_report(cases: pl.DataFrame) -> pl.DataFrame:
    """Per queue and category: cases, resolved, median / p90 resolution time, first-contact share."""
    c = pl.col
    return (
        cases.group_by("queue", "category")
        .agg(
            cases=pl.len(),
            resolved=c("resolved_at").count(),
            median_resolution_s=c("resolution_s").median(),
            p90_resolution_s=c("resolution_s").quantile(0.9, interpolation="linear"),
            first_contact=c("resolved_first_contact").sum(),
        )
        .with_columns(first_contact_resolution_rate=ratio(c("first_contact"), c("resolved")))
        .drop("first_contact")
        .sort("queue", "category", nulls_last=True)
    )


QUALITY_BY = {"quality": ("queue", "trunk"), "quality-agents": ("agent_id",)}


def quality_report(calls: pl.DataFrame, by: Sequence[str] = QUALITY_BY["quality"]) -> pl.DataFrame:
    """Per ``by`` (queue and trunk, null: not named; or agent): how the calls sounded, the
    polars twin of ``quality_kpis_by`` in sql/schema/views.sql over call_quality rows. Each
    share's denominator is the calls that have its measure. Grouped by agent, calls no agent
    answered are left out, as in ``kpi_quality_agent_interval``."""
    c = pl.col
    if "agent_id" in by:
        calls = calls.filter(c("agent_id").is_not_null())
    return (
        calls.group_by(*by)
        .agg(
            calls=pl.len(),
            mos_calls=c("mos").count(),
            mos_mean=c("mos").mean(),
            poor_mos=c("poor_mos").sum(),
            jitter_p95_ms=c("jitter_ms").quantile(0.95, interpolation="linear"),
            loss_mean_pct=c("loss_pct").mean(),
            network_calls=c("poor_network").count(),
            poor_network=c("poor_network").sum(),
            poor_calls=c("poor").sum(),
        )
        .with_columns(
            poor_mos_ratio=ratio(c("poor_mos"), c("mos_calls")),
            poor_network_ratio=ratio(c("poor_network"), c("network_calls")),
            poor_quality_ratio=ratio(c("poor_calls"), c("calls")),
        )
        .select(
            *by,
            "calls",
            "mos_mean",
            "poor_mos_ratio",
            "jitter_p95_ms",
            "loss_mean_pct",
            "poor_network_ratio",
            "poor_calls",
            "poor_quality_ratio",
        )  # fmt: skip
        .sort(*by, nulls_last=True)
    )


def abandon_curve(calls: pl.DataFrame, step_s: float = 10.0, max_s: float = 300.0) -> pl.DataFrame:
    """Share of calls (with an outcome) abandoned with a wait of at most t, for t = 0, step, ... max."""
    done = calls.filter(pl.col("outcome") != "waiting")
    total = done.height
    waits = done.filter(pl.col("outcome") == "abandoned").get_column("wait_s").drop_nulls().sort()
    points = [i * step_s for i in range(int(max_s // step_s) + 1)]
    counts = [int(waits.search_sorted(t, side="right")) for t in points] if waits.len() else [0] * len(points)
    return pl.DataFrame(
        {"wait_s": points, "abandoned_share": [n / total if total else None for n in counts]},
        schema={"wait_s": pl.Float64, "abandoned_share": pl.Float64},
    )


def aht_distribution(calls: pl.DataFrame, bin_s: float = 60.0) -> pl.DataFrame:
    """Handled calls per handle-time bin: bin_start_s, calls."""
    handled = calls.get_column("handle_s").drop_nulls()
    if handled.len() == 0:
        return pl.DataFrame(schema={"bin_start_s": pl.Float64, "calls": pl.UInt32})
    bins = (handled / bin_s).floor() * bin_s
    return bins.alias("bin_start_s").value_counts(name="calls").sort("bin_start_s")


def centre_by_interval(sums: pl.DataFrame, tz: str) -> pl.DataFrame:
    """All queues together per interval (for charts): offered, answered, abandoned, service level."""
    s = sums.with_columns(pl.lit("all").alias("queue_all"))
    out = queue_kpis(s.drop("queue").rename({"queue_all": "queue"}), ["queue", "interval_start"])
    return out.with_columns(pl.col("interval_start").dt.convert_time_zone(tz)).sort("interval_start")
