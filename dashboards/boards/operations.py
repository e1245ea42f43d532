"""Operations board: today by interval per queue, targets drawn as dashed lines,
breaches as annotations and a state timeline."""

from __future__ import annotations

from typing import Any

from grafana_foundation_sdk.builders import dashboard as dash_b
from grafana_foundation_sdk.builders import statetimeline
from grafana_foundation_sdk.models import common as common_m

from dashboards.panels import (
    DATASOURCE,
    GREEN,
    RED,
    UNITS,
    Grid,
    dashboard,
    query,
    queue_variable,
    sel,
    series_panel,
    target_lines,
    thresholds,
)
from metrics.export import names as n
from metrics.kpi.definitions import BOARD_ORDER
from pipeline.core.config import Config

UID = "callpulse-operations"
QS = {"queue": "~$queue"}
WINDOW = "15m"  # the rolling window drawn over the day (one interval by default)
INTERVAL = "15m"  # the bars' minimum step: one reporting interval


def _with_target(title: str, unit: str, value: str, target: n.MetricName | None) -> Any:
    """A time series of ``value`` per queue, with the queue's target as a dashed line."""
    targets = [query(value, "A", legend="{{queue}}")]
    if target is not None:
        targets.append(query(sel(target, **QS), "B", legend="target {{queue}}"))
    return target_lines(series_panel(title, unit, *targets))


def _windowed(title: str, unit: str, kpi: n.MetricName, target: n.MetricName | None = None) -> Any:
    return _with_target(f"{title} ({WINDOW} window)", unit, sel(kpi, queue="~$queue", window=WINDOW), target)


def breach_annotation() -> dash_b.AnnotationQuery:
    return (
        dash_b.AnnotationQuery()
        .name("KPI breaches")
        .datasource(DATASOURCE)
        .enable(True)
        .icon_color(RED)
        .expr(f"{sel(n.BREACH, **QS)} == 1")
        .step("60s")
        .title_format("{{queue}}: {{kpi}} ({{window}})")
        .tag_keys("queue,kpi,window")
    )


def build(config: Config | None = None) -> dict[str, Any]:
    del config  # targets come from the exported target series
    grid = Grid()
    counts = [
        query(f"sum(increase({sel(metric, **QS)}[$__interval]))", ref, legend=label)
        for ref, label, metric in (
            ("A", "offered", n.CALLS_OFFERED_TOTAL),
            ("B", "answered", n.CALLS_ANSWERED_TOTAL),
            ("C", "abandoned", n.CALLS_ABANDONED_TOTAL),
        )
    ]
    grid.place(series_panel("Calls per interval", "short", *counts, bars=True, interval=INTERVAL), 24, 8)
    for kpi in BOARD_ORDER:
        if kpi.rolling:
            series = n.KPI_SERIES[kpi.name]
            grid.place(_windowed(kpi.label, UNITS[kpi.unit][0], series.value, series.target), 12, 8)
    grid.place(_windowed("AHT", "s", n.AHT), 12, 8)
    grid.place(_windowed("Occupancy", "percentunit", n.OCCUPANCY), 12, 8)
    for kpi in BOARD_ORDER:
        if not kpi.rolling:
            series = n.KPI_SERIES[kpi.name]
            unit = UNITS[kpi.unit][0]
            grid.place(_with_target(f"{kpi.label} now", unit, sel(series.value, **QS), series.target), 12, 8)
    grid.place(
        statetimeline.Panel()
        .title("KPI breaches (1 = breaching)")
        .datasource(DATASOURCE)
        .with_target(query(sel(n.BREACH, **QS), "A", legend="{{queue}} {{kpi}} {{window}}"))
        .thresholds(thresholds(GREEN, (1, RED)))
        .show_value(common_m.VisibilityMode.NEVER),
        24,
        10,
    )
    return dashboard(
        UID,
        "callpulse — operations",
        grid,
        refresh="1m",
        time_from="now/d",
        description=("The day by interval per queue; lines labelled target are the targets; red marks are breaches."),
        variables=[queue_variable(n.CALLS_OFFERED_TOTAL)],
        annotations=[breach_annotation()],
    )
