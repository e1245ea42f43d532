"""Small shared pieces for the Grafana boards, on top of grafana-foundation-sdk.

The SDK's automatic layout wraps late, so every board places its panels through a
``Grid`` that hands out explicit ids, refIds and grid positions. Every PromQL
expression is built from ``metrics.export.names`` constants (``m(...)``), never typed by hand.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from grafana_foundation_sdk.builders import common as common_b
from grafana_foundation_sdk.builders import dashboard as dash_b
from grafana_foundation_sdk.builders import prometheus, stat, timeseries
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as common_m
from grafana_foundation_sdk.models import dashboard as dash_m

from metrics.export.names import MetricName
from metrics.kpi.definitions import RATIO, SECONDS

# The provisioned Prometheus data source (deploy/grafana/provisioning/datasources).
DATASOURCE_UID = "callpulse-prometheus"
DATASOURCE = common_m.DataSourceRef(type_val="prometheus", uid=DATASOURCE_UID)
FOLDER_UID = "callpulse"
FOLDER_TITLE = "callpulse"
TAGS = ["callpulse"]
GRID_WIDTH = 24

GREEN, RED, BLUE, GREY = "green", "red", "blue", "#6b7280"
# KPI table unit -> (Grafana unit, decimals shown on a big number)
UNITS: dict[str, tuple[str, int]] = {RATIO: ("percentunit", 1), SECONDS: ("s", 0)}


def m(metric: MetricName, suffix: str = "") -> str:
    """The exported name of ``metric`` (``suffix``: ``_bucket`` / ``_count`` / ``_sum``)."""
    if suffix and metric.kind != "histogram":
        raise ValueError(f"{metric.name} is a {metric.kind}, it has no {suffix} series")
    return metric.name + suffix


def sel(metric: MetricName, suffix: str = "", **labels: str) -> str:
    """``name{label="value",...}``; a value starting with ``~`` is a regex match."""
    parts = []
    for key, value in labels.items():
        op, value = ("=~", value[1:]) if value.startswith("~") else ("=", value)
        parts.append(f'{key}{op}"{value}"')
    return m(metric, suffix) + ("{" + ",".join(parts) + "}" if parts else "")


def query(expr: str, ref_id: str, legend: str = "", instant: bool = False) -> prometheus.Dataquery:
    q = prometheus.Dataquery().expr(expr).ref_id(ref_id).datasource(DATASOURCE)
    if legend:
        q = q.legend_format(legend)
    return q.instant() if instant else q.range()


@dataclass
class Grid:
    """Places panels row by row on Grafana's 24-column grid, numbering them from 1."""

    x: int = 0
    y: int = 0
    row_h: int = 0
    next_id: int = 1
    items: list[Builder[Any]] = field(default_factory=list)

    def _take_id(self) -> int:
        self.next_id += 1
        return self.next_id - 1

    def row(self, title: str, repeat: str | None = None) -> None:
        """A (non-collapsed) row header across the full width, below what was placed."""
        self.newline()
        r = dash_b.Row(title).id(self._take_id()).grid_pos(dash_m.GridPos(h=1, w=GRID_WIDTH, x=0, y=self.y))
        if repeat:
            r = r.repeat(repeat)
        self.items.append(r)
        self.y += 1

    def newline(self) -> None:
        if self.x:
            self.x, self.y, self.row_h = 0, self.y + self.row_h, 0

    def place(self, panel: Any, w: int, h: int) -> None:
        if self.x + w > GRID_WIDTH:
            self.newline()
        panel.id(self._take_id()).grid_pos(dash_m.GridPos(h=h, w=w, x=self.x, y=self.y))
        self.items.append(panel)
        self.x += w
        self.row_h = max(self.row_h, h)
        if self.x >= GRID_WIDTH:
            self.newline()


def thresholds(base: str, *steps: tuple[float, str]) -> dash_b.ThresholdsConfig:
    return (
        dash_b.ThresholdsConfig()
        .mode(dash_m.ThresholdsMode.ABSOLUTE)
        .steps([dash_m.Threshold(value=None, color=base)] + [dash_m.Threshold(value=v, color=c) for v, c in steps])
    )


def config_from_query(ref_id: str, field_name: str, handler: str = "threshold1") -> dash_m.DataTransformerConfig:
    """Grafana's "Config from query results": the last value of query ``ref_id`` (its
    series named ``field_name`` by legendFormat) becomes a field setting such as the
    first threshold step; the query itself is then not shown."""
    return dash_m.DataTransformerConfig(
        id_val="configFromData",
        options={
            "configRefId": ref_id,
            "mappings": [{"fieldName": field_name, "handlerKey": handler, "reducerId": "lastNotNull"}],
        },
    )


def big_stat(title: str, unit: str, *targets: prometheus.Dataquery, decimals: int | None = None) -> stat.Panel:
    """A kiosk tile: big value, background colour, last non-null value of instant queries."""
    p = (
        stat.Panel()
        .title(title)
        .datasource(DATASOURCE)
        .unit(unit)
        .color_mode(common_m.BigValueColorMode.BACKGROUND)
        .graph_mode(common_m.BigValueGraphMode.NONE)
        .text_mode(common_m.BigValueTextMode.VALUE)
        .justify_mode(common_m.BigValueJustifyMode.CENTER)
        .reduce_options(common_b.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .text(common_b.VizTextDisplayOptions().title_size(22).value_size(64))
        .no_value("–")
    )
    if decimals is not None:
        p = p.decimals(decimals)
    for t in targets:
        p = p.with_target(t)
    return p


def series_panel(
    title: str,
    unit: str,
    *targets: prometheus.Dataquery,
    bars: bool = False,
    interval: str | None = None,
) -> timeseries.Panel:
    p = timeseries.Panel().title(title).datasource(DATASOURCE).unit(unit)
    if bars:
        p = p.draw_style(common_m.GraphDrawStyle.BARS).fill_opacity(70).bar_alignment(common_m.BarAlignment.AFTER)
    else:
        p = p.line_width(2).fill_opacity(10)
    if interval:
        p = p.interval(interval)
    for t in targets:
        p = p.with_target(t)
    return p


def target_lines(panel: timeseries.Panel) -> timeseries.Panel:
    """KPI-and-target panels: plain lines, no fill, so a target series (legend
    ``target <queue>``) reads as a level to stay above or below. (A per-series dashed
    style needs a byRegexp override, which the published v1 schema does not accept.)"""
    return panel.fill_opacity(0)


def queue_variable(metric: MetricName, multi: bool = True) -> dash_b.QueryVariable:
    return label_variable("queue", "queue", metric, "Queue", multi=multi)


def label_variable(name: str, label: str, metric: MetricName, title: str, multi: bool = True) -> dash_b.QueryVariable:
    """A variable over the values of ``label`` on ``metric`` (default: All)."""
    return (
        dash_b.QueryVariable(name)
        .label(title)
        .datasource(DATASOURCE)
        .query(f"label_values({m(metric)}, {label})")
        .refresh(dash_m.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dash_m.VariableSort.ALPHABETICAL_ASC)
        .multi(multi)
        .include_all(True)
        .current(dash_m.VariableOption(selected=True, text="All", value="$__all"))
    )


def window_variable(windows: Sequence[str], current: str = "15m") -> dash_b.CustomVariable:
    """``$window``: one of the exported rolling windows."""
    return (
        dash_b.CustomVariable("window")
        .label("Window")
        .values(",".join(windows))
        .current(dash_m.VariableOption(selected=True, text=current, value=current))
    )


def dashboard(
    uid: str,
    title: str,
    grid: Grid,
    refresh: str,
    time_from: str,
    description: str,
    variables: Sequence[Any] = (),
    annotations: Sequence[Any] = (),
) -> dict[str, Any]:  # type: ignore[assignment]
    """Assemble and encode: the result is a plain, JSON-ready ``dict``."""
    d = (
        dash_b.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(TAGS)
        .refresh(refresh)
        .time(time_from, "now")
        .timezone("browser")
        .editable()
        .tooltip(dash_m.DashboardCursorSync.CROSSHAIR)
    )
    for v in variables:
        d = d.with_variable(v)
    for a in annotations:
        d = d.annotation(a)
    for item in grid.items:
        d = d.with_row(item) if isinstance(item, dash_b.Row) else d.with_panel(item)
    encoded: dict[str, Any] = json.loads(json.dumps(d.build(), cls=JSONEncoder))
    return encoded
