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
from pipeline.core.config import Config

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


def kpi_tile(
    title: str,
    unit: str,
    value_expr: str,
    threshold_expr: str,
    *,
    higher_is_better: bool,
    default_target: float,
    decimals: int | None = None,
) -> Any:
    below, above = (RED, GREEN) if higher_is_better else (GREEN, RED)
    return (
        big_stat(
            title,
            unit,
            query(value_expr, "A", instant=True),
            query(threshold_expr, "T", legend="threshold1", instant=True),
            decimals=decimals,
        )
        .thresholds(thresholds(below, (default_target, above)))
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
    grid.place(
        kpi_tile(
            "Oldest wait",
            "s",
            sel(n.OLDEST_WAIT, **Q),
            sel(n.TARGET_OLDEST_WAIT, **Q),
            higher_is_better=False,
            default_target=targets.oldest_wait_s,
            decimals=0,
        ),
        4,
        6,
    )
    window = {"queue": "$queue", "window": "$window"}
    grid.place(
        kpi_tile(
            "Service level ($window)",
            "percentunit",
            sel(n.SERVICE_LEVEL, **window),
            gated_target(n.TARGET_SERVICE_LEVEL, NEVER_LOW),
            higher_is_better=True,
            default_target=targets.service_level,
            decimals=1,
        ),
        4,
        6,
    )
    grid.place(
        kpi_tile(
            "ASA ($window)",
            "s",
            sel(n.ASA, **window),
            gated_target(n.TARGET_ASA, NEVER_HIGH),
            higher_is_better=False,
            default_target=targets.asa_s,
            decimals=0,
        ),
        4,
        6,
    )
    grid.place(
        kpi_tile(
            "Abandon rate ($window)",
            "percentunit",
            sel(n.ABANDON_RATE, **window),
            gated_target(n.TARGET_ABANDON_RATE, NEVER_HIGH),
            higher_is_better=False,
            default_target=targets.abandon_rate,
            decimals=1,
        ),
        4,
        6,
    )
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
    for state, title in (
        ("ready", "Agents ready"),
        ("busy", "Agents busy"),
        ("wrap", "Agents in wrap"),
        ("not_ready", "Agents not ready"),
    ):
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
