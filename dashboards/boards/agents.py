"""Agent board: states and not-ready reasons over time, occupancy, AHT and handled
calls per queue. Per-agent series are not exported (see the note panel)."""

from __future__ import annotations

from typing import Any

from grafana_foundation_sdk.builders import common as common_b
from grafana_foundation_sdk.builders import text
from grafana_foundation_sdk.models import common as common_m

from dashboards.panels import Grid, dashboard, query, queue_variable, sel, series_panel
from metrics import names as n
from pipeline.config import Config

UID = "callpulse-agents"
QS = {"queue": "~$queue"}
WINDOW = "15m"
NOTE = (
    "Per-agent handled calls, AHT, occupancy, not-ready time by reason and QA score are "
    "computed in DuckDB (`kpi_agent_interval`, `kpi_agent_daily`) but are not exported to "
    "Prometheus yet; this board shows what the exporter has: agents per state and reason, "
    "and occupancy, AHT and answered calls per queue."
)


def _stacked(panel: Any) -> Any:
    return panel.stacking(common_b.StackingConfig().mode(common_m.StackingMode.NORMAL)).fill_opacity(60)


def build(config: Config | None = None) -> dict[str, Any]:
    del config
    grid = Grid()
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
    grid.place(text.Panel().title("Per-agent KPIs").content(NOTE), 24, 3)
    return dashboard(
        UID,
        "callpulse — agents",
        grid,
        refresh="30s",
        time_from="now/d",
        description="Agent states and workload per queue.",
        variables=[queue_variable(n.AGENTS)],
    )
