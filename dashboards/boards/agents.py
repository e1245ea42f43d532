"""Agent board: per agent (``$agent``, rolling ``$window``) handled calls, AHT,
occupancy, not-ready time by reason and QA score; below, states, not-ready reasons,
occupancy, AHT and handled calls per queue (``$queue``) over the day.

The per-agent panels read the ``callpulse_agent_*`` series, which the exporter has only
with ``[exporter] per_agent = true`` (metrics.export.names.PER_AGENT); the queue panels work
either way.
"""

from __future__ import annotations

from typing import Any

from grafana_foundation_sdk.builders import bargauge, text
from grafana_foundation_sdk.builders import common as common_b
from grafana_foundation_sdk.models import common as common_m

from dashboards.panels import (
    DATASOURCE,
    GREY,
    Grid,
    dashboard,
    label_variable,
    query,
    queue_variable,
    sel,
    series_panel,
    thresholds,
    window_variable,
)
from metrics.export import names as n
from pipeline.core.config import Config

UID = "callpulse-agents"
QS = {"queue": "~$queue"}
AW = {"agent": "~$agent", "window": "$window"}
WINDOW = "15m"  # the queue panels' rolling window
NOTE = (
    "Per-agent panels need `[exporter] per_agent = true` (one series per agent). Handled calls "
    "and AHT count the calls offered in the window; occupancy = (busy + wrap) / (busy + wrap + "
    f"ready) time in the window; QA score = mean of the evaluations made in the last {n.QA_WINDOW}."
)


def _stacked(panel: Any) -> Any:
    return panel.stacking(common_b.StackingConfig().mode(common_m.StackingMode.NORMAL)).fill_opacity(60)


def agent_bars(title: str, unit: str, expr: str, legend: str = "{{agent}}") -> bargauge.Panel:
    """One horizontal bar per series (per agent, or per agent and reason), last value."""
    return (
        bargauge.Panel()
        .title(title)
        .datasource(DATASOURCE)
        .unit(unit)
        .with_target(query(expr, "A", legend=legend, instant=True))
        .orientation(common_m.VizOrientation.HORIZONTAL)
        .display_mode(common_m.BarGaugeDisplayMode.BASIC)
        .reduce_options(common_b.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .thresholds(thresholds(GREY))
    )


def build(config: Config | None = None) -> dict[str, Any]:
    del config
    grid = Grid()
    grid.row("Per agent ($window window)")
    for title, unit, metric in (
        ("Handled calls", "short", n.AGENT_HANDLED),
        ("AHT", "s", n.AGENT_AHT),
        ("Occupancy", "percentunit", n.AGENT_OCCUPANCY),
    ):
        grid.place(agent_bars(f"{title} ($window window)", unit, sel(metric, **AW)), 6, 10)
    grid.place(
        agent_bars(f"QA score (last {n.QA_WINDOW})", "none", sel(n.AGENT_QA_SCORE, agent="~$agent")).min(0).max(100),
        6,
        10,
    )
    grid.place(
        agent_bars(
            "Not-ready time by agent and reason ($window window)",
            "s",
            f"sum by (agent, reason) ({sel(n.AGENT_NOT_READY_SECONDS, **AW)})",
            legend="{{agent}} · {{reason}}",
        ),
        12,
        10,
    )
    grid.place(
        series_panel(
            "Occupancy per agent ($window window)",
            "percentunit",
            query(sel(n.AGENT_OCCUPANCY, **AW), "A", legend="{{agent}}"),
        ),
        12,
        10,
    )
    grid.place(text.Panel().title("Per-agent KPIs").content(NOTE), 24, 2)
    grid.row("Per queue")
    grid.place(
        _stacked(
            series_panel(
                "Agents by state",
                "short",
                query(f"sum by (state) ({sel(n.AGENTS, **QS)})", "A", legend="{{state}}"),
            )
        ),
        12,
        9,
    )
    grid.place(
        _stacked(
            series_panel(
                "Agents not ready, by reason",
                "short",
                query(
                    f"sum by (reason) ({sel(n.AGENTS, queue='~$queue', state='not_ready')})",
                    "A",
                    legend="{{reason}}",
                ),
            )
        ),
        12,
        9,
    )
    grid.place(
        series_panel(
            f"Occupancy ({WINDOW} window)",
            "percentunit",
            query(sel(n.OCCUPANCY, queue="~$queue", window=WINDOW), "A", legend="{{queue}}"),
        ),
        8,
        8,
    )
    grid.place(
        series_panel(
            f"AHT ({WINDOW} window)",
            "s",
            query(sel(n.AHT, queue="~$queue", window=WINDOW), "A", legend="{{queue}}"),
        ),
        8,
        8,
    )
    grid.place(
        series_panel(
            "Handled (answered) calls per interval",
            "short",
            query(
                f"sum by (queue) (increase({sel(n.CALLS_ANSWERED_TOTAL, **QS)}[$__interval]))",
                "A",
                legend="{{queue}}",
            ),
            bars=True,
            interval="15m",
        ),
        8,
        8,
    )
    return dashboard(
        UID,
        "callpulse — agents",
        grid,
        refresh="30s",
        time_from="now/d",
        description="Per-agent KPIs (needs [exporter] per_agent = true); agent states and workload per queue.",
        variables=[
            queue_variable(n.AGENTS),
            label_variable("agent", "agent", n.AGENT_HANDLED, "Agent"),
            window_variable(n.WINDOWS),
        ],
    )
