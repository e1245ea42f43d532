"""Supervisor wallboard: one row of big tiles per queue (``$queue`` repeats the row).

Colours come from the targets the exporter publishes: each KPI tile has a second,
hidden query that returns the queue's target (``callpulse_target_*``), and Grafana's
"config from query results" transformation turns it into the tile's threshold. A
window with fewer than ``min_calls`` offered calls gets a threshold that can never be
crossed, so, as on the terminal board, too few calls never show a breach. The static
thresholds in the JSON are the configured default targets (used until the target
query answers, e.g. in an editor preview).
"""

from __future__ import annotations

from typing import Any

from grafana_foundation_sdk.builders import common as common_b
from grafana_foundation_sdk.models import common as common_m

from dashboards.panels import (
    BLUE,
    GREEN,
    GREY,
    RED,
    UNITS,
    Grid,
    big_stat,
    config_from_query,
    dashboard,
    query,
    queue_variable,
    sel,
    thresholds,
    window_variable,
)
from metrics.export import names as n
from metrics.kpi.definitions import BOARD_ORDER, Kpi
from pipeline.core.config import Config, Targets
from pipeline.core.records import WORK_STATES

UID = "callpulse-wallboard"
Q = {"queue": "$queue"}
# A threshold no value reaches: what a KPI on too few calls is compared with.
NEVER_HIGH, NEVER_LOW = 10**12, -1


def gated_target(target: n.MetricName, never: int) -> str:
    """The queue's target while its ``$window`` has at least min_calls offered calls,
    else ``never`` (so the tile cannot turn to the breach colour)."""
    t = sel(target, **Q)
    enough = f"{sel(n.WINDOW_OFFERED, queue='$queue', window='$window')} >= on (queue) {sel(n.MIN_CALLS, **Q)}"
    return f"({t} and on (queue) ({enough})) or on (queue) ({t} * 0 + ({never}))"


def kpi_tile(kpi: Kpi, targets: Targets) -> Any:
    """A KPI's big number, coloured by its target (gated by min_calls where the KPI table says)."""
    series = n.KPI_SERIES[kpi.name]
    unit, decimals = UNITS[kpi.unit]
    if kpi.rolling:
        title = f"{kpi.label} ($window)"
        value_expr = sel(series.value, queue="$queue", window="$window")
    else:
        title, value_expr = kpi.label, sel(series.value, **Q)
    if kpi.gated:
        threshold_expr = gated_target(series.target, NEVER_LOW if kpi.higher_is_better else NEVER_HIGH)
    else:
        threshold_expr = sel(series.target, **Q)
    below, above = (RED, GREEN) if kpi.higher_is_better else (GREEN, RED)
    return (
        big_stat(
            title,
            unit,
            query(value_expr, "A", instant=True),
            query(threshold_expr, "T", legend="threshold1", instant=True),
            decimals=decimals,
        )
        .thresholds(thresholds(below, (getattr(targets, kpi.target), above)))
        .with_transformation(config_from_query("T", "threshold1"))
    )


def reason_tile(title: str, unit: str, expr: str) -> Any:
    """One value per not-ready reason, named by it."""
    return (
        big_stat(title, unit, query(expr, "A", legend="{{reason}}", instant=True), decimals=0)
        .thresholds(thresholds(GREY))
        .color_mode(common_m.BigValueColorMode.VALUE)
        .text_mode(common_m.BigValueTextMode.VALUE_AND_NAME)
        .text(common_b.VizTextDisplayOptions().title_size(16).value_size(32))
        .no_value("none")
    )


def build(config: Config | None = None) -> dict[str, Any]:
    targets = (config or Config()).defaults.targets
    grid = Grid()
    grid.row("$queue", repeat="queue")
    grid.place(
        big_stat(
            "Calls waiting",
            "short",
            query(sel(n.CALLS_WAITING, **Q), "A", instant=True),
            decimals=0,
        ).thresholds(thresholds(BLUE)),
        4,
        6,
    )
    for kpi in BOARD_ORDER:
        grid.place(kpi_tile(kpi, targets), 4, 6)
    grid.place(
        big_stat(
            "KPIs in breach",
            "short",
            query(f"sum({sel(n.BREACH, **Q)})", "A", instant=True),
            decimals=0,
        ).thresholds(thresholds(GREEN, (1, RED))),
        4,
        6,
    )
    for state in WORK_STATES:
        title = "Agents in wrap" if state == "wrap" else f"Agents {state.replace('_', ' ')}"
        expr = f"sum({sel(n.AGENTS, queue='$queue', state=state)})"
        grid.place(
            big_stat(title, "short", query(expr, "A", instant=True), decimals=0)
            .thresholds(thresholds(GREY))
            .no_value("0"),
            3,
            5,
        )
    by_reason = f"sum by (reason) ({sel(n.AGENTS, queue='$queue', state='not_ready')})"
    grid.place(reason_tile("Not ready by reason (agents)", "short", by_reason), 6, 5)
    # Time so far in not-ready of the agents not ready now, summed per reason.
    time_by_reason = f"sum by (reason) ({sel(n.AGENTS_NOT_READY_SECONDS, **Q)})"
    grid.place(reason_tile("Time not ready by reason", "s", time_by_reason), 6, 5)
    window_var = window_variable(n.WINDOWS)
    return dashboard(
        UID,
        "callpulse — supervisor wallboard",
        grid,
        refresh="5s",
        time_from="now-15m",
        description=("Live tiles per queue; colours from the exported targets. Open with ?kiosk on a TV."),
        variables=[queue_variable(n.CALLS_WAITING), window_var],
    )
