"""Call-quality board: how calls sounded per queue (MOS, jitter, the poor share against
its target), from the quality counters and histograms summed across workers, with the
event-time poor-quality breaches."""

from __future__ import annotations

from typing import Any

from grafana_foundation_sdk.builders import statetimeline
from grafana_foundation_sdk.models import common as common_m

from dashboards.panels import (
    DATASOURCE,
    GREEN,
    RED,
    Grid,
    big_stat,
    dashboard,
    query,
    queue_variable,
    sel,
    series_panel,
    target_lines,
    thresholds,
)
from metrics.export import names as n
from metrics.kpi.definitions import POOR_QUALITY
from pipeline.core.config import Config

UID = "callpulse-quality"
QS = {"queue": "~$queue"}
RANGE = "15m"  # the range the shares and quantiles are taken over (the alert's default)
INTERVAL = "15m"


def poor_share(by: str = "queue") -> str:
    """Poor quality reports ÷ reports over RANGE, summed across workers (no reports: no value)."""
    poor = f"sum by ({by}) (increase({sel(n.QUALITY_POOR_REPORTS_TOTAL, **QS)}[{RANGE}]))"
    reports = f"sum by ({by}) (increase({sel(n.QUALITY_REPORTS_TOTAL, **QS)}[{RANGE}]))"
    return f"{poor} / ({reports} > 0)"


def quantile(metric: n.MetricName, q: float) -> str:
    return f"histogram_quantile({q:g}, sum by (queue, le) (rate({sel(metric, '_bucket', **QS)}[{RANGE}])))"


def build(config: Config | None = None) -> dict[str, Any]:
    target = (config or Config()).defaults.targets.poor_quality_ratio
    grid = Grid()
    tile = big_stat(f"Poor calls ({RANGE})", "percentunit", query(poor_share(), "A", legend="{{queue}}", instant=True))
    grid.place(tile.decimals(1).thresholds(thresholds(GREEN, (target, RED))), 8, 6)
    mos_tile = big_stat(f"Median MOS ({RANGE})", "none", query(quantile(n.QUALITY_MOS, 0.5), "A", instant=True))
    grid.place(mos_tile.decimals(2).thresholds(thresholds(RED, (3.5, GREEN))), 8, 6)
    jitter_tile = big_stat(f"p95 jitter ({RANGE})", "s", query(quantile(n.QUALITY_JITTER, 0.95), "A", instant=True))
    grid.place(jitter_tile.decimals(3).thresholds(thresholds(GREEN, (0.03, RED))), 8, 6)
    share = series_panel(
        f"Poor share of quality reports ({RANGE})",
        "percentunit",
        query(poor_share(), "A", legend="{{queue}}"),
        query(sel(n.TARGET_POOR_QUALITY, **QS), "B", legend="target {{queue}}"),
    )
    grid.place(target_lines(share), 24, 8)
    grid.place(series_panel("Median MOS", "none", query(quantile(n.QUALITY_MOS, 0.5), "A", legend="{{queue}}")), 12, 8)
    grid.place(series_panel("p95 jitter", "s", query(quantile(n.QUALITY_JITTER, 0.95), "A", legend="{{queue}}")), 12, 8)
    counts = [
        query(f"sum(increase({sel(metric, **QS)}[$__interval]))", ref, legend=label)
        for ref, label, metric in (
            ("A", "reports", n.QUALITY_REPORTS_TOTAL),
            ("B", "poor", n.QUALITY_POOR_REPORTS_TOTAL),
        )
    ]
    grid.place(series_panel("Quality reports per interval", "short", *counts, bars=True, interval=INTERVAL), 24, 8)
    grid.place(
        statetimeline.Panel()
        .title("Poor-quality breaches (1 = breaching, event time)")
        .datasource(DATASOURCE)
        .with_target(
            query(sel(n.BREACH, kpi=POOR_QUALITY.name, **QS), "A", legend="{{queue}} {{window}}"),
        )
        .thresholds(thresholds(GREEN, (1, RED)))
        .show_value(common_m.VisibilityMode.NEVER),
        24,
        8,
    )
    return dashboard(
        UID,
        "callpulse — call quality",
        grid,
        refresh="30s",
        time_from="now-6h",
        description=(
            "How calls sounded per queue: the share of poor quality reports (MOS, loss or jitter past the "
            "queue's thresholds) against its target, median MOS and p95 jitter, summed across workers."
        ),
        variables=[queue_variable(n.QUALITY_REPORTS_TOTAL)],
    )
