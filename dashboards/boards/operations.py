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
from pipeline.core.config import Config

UID = "callpulse-operations"
QS = {"queue": "~$queue"}
WINDOW = "15m"  # the rolling window drawn over the day (one interval by default)
INTERVAL = "15m"  # the bars' minimum step: one reporting interval


def _kpi_with_target(title: str, unit: str, kpi: n.MetricName, target: n.MetricName | None) -> Any:
    targets = [query(sel(kpi, queue="~$queue", window=WINDOW), "A", legend="{{queue}}")]
    if target is not None:
        targets.append(query(sel(target, **QS), "B", legend="target {{queue}}"))
    return target_lines(series_panel(f"{title} ({WINDOW} window)", unit, *targets))


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
    grid.place(
        _kpi_with_target("Service level", "percentunit", n.SERVICE_LEVEL, n.TARGET_SERVICE_LEVEL),
        12,
        8,
    )
    grid.place(_kpi_with_target("ASA", "s", n.ASA, n.TARGET_ASA), 12, 8)
    grid.place(
        _kpi_with_target("Abandon rate", "percentunit", n.ABANDON_RATE, n.TARGET_ABANDON_RATE),
        12,
        8,
    )
    grid.place(_kpi_with_target("AHT", "s", n.AHT, None), 12, 8)
    grid.place(_kpi_with_target("Occupancy", "percentunit", n.OCCUPANCY, None), 12, 8)
    grid.place(
        target_lines(
            series_panel(
                "Oldest wait now",
                "s",
                query(sel(n.OLDEST_WAIT, **QS), "A", legend="{{queue}}"),
                query(sel(n.TARGET_OLDEST_WAIT, **QS), "B", legend="target {{queue}}"),
            )
        ),
        12,
        8,
    )
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
