"""The queue KPIs that have a target, once: what each is called, its unit, which way is
better, whether too few calls silence it, where its value and target live.

Everyone that judges a KPI against its target reads this table: breach detection
(metrics.kpi.breaches), the Prometheus collector and alert rules (metrics.export), the
Grafana boards (dashboards/boards), the built-in wallboard (dashboards/wallboard.py)
and the terminal board (pipeline.cli.board). Adding a KPI here is most of adding it
everywhere; the SQL that computes it and its metric names are the rest.

Pure: no I/O, no imports beyond the standard library.
"""

from __future__ import annotations

from dataclasses import dataclass

ROLLING = "rolling"
"""Computed on every configured rolling window (``5m``, ``15m``, ``1h`` ...)."""
LIVE = "live"
"""Computed as of the watermark, not over a window; its breaches use the window ``"live"``."""

RATIO, SECONDS = "ratio", "seconds"


@dataclass(frozen=True, slots=True)
class Kpi:
    """One queue KPI with a target.

    ``value`` names the number in the KPI snapshot (a ``QueueKpis`` field for a rolling
    KPI, a ``QueueSnapshot`` field for a live one) and the column of the breach
    queries; ``target`` names the ``QueueTargets`` field, ``target_<target>`` being its
    column in SQL.
    """

    name: str
    label: str
    long_label: str
    unit: str
    higher_is_better: bool
    gated: bool
    value: str
    target: str
    windows: str

    @property
    def rolling(self) -> bool:
        return self.windows == ROLLING

    def breaches(self, value: float, target: float) -> bool:
        """Whether ``value`` is past ``target`` (on the target itself is within it)."""
        return value < target if self.higher_is_better else value > target

    def verdict(self, value: float | None, target: float, enough_calls: bool = True) -> bool | None:
        """True within target, False past it, None when it cannot be judged: the value is
        undefined (no calls) or, for a gated KPI, the window had fewer than min_calls."""
        if value is None or (self.gated and not enough_calls):
            return None
        return not self.breaches(value, target)

    def worse(self, a: float | None, b: float | None) -> float | None:
        """The worse of two values (the lower service level, the longer wait ...)."""
        if a is None or b is None:
            return b if a is None else a
        return min(a, b) if self.higher_is_better else max(a, b)


SERVICE_LEVEL = Kpi(
    "service_level", "Service level", "Service level", RATIO, True, True, "service_level", "service_level", ROLLING
)
ABANDON_RATE = Kpi(
    "abandon_rate", "Abandon rate", "Abandon rate", RATIO, False, True, "abandon_rate", "abandon_rate", ROLLING
)
ASA = Kpi("asa", "ASA", "Average speed of answer", SECONDS, False, True, "asa_s", "asa_s", ROLLING)
# One caller waiting too long is a breach however few calls the queue has: not gated.
OLDEST_WAIT = Kpi(
    "oldest_wait", "Oldest wait", "Oldest wait", SECONDS, False, False, "oldest_wait_s", "oldest_wait_s", LIVE
)

QUEUE_KPIS: tuple[Kpi, ...] = (SERVICE_LEVEL, ABANDON_RATE, ASA, OLDEST_WAIT)
"""Every queue KPI with a target, in the order of the alert rules and breach series."""

BOARD_ORDER: tuple[Kpi, ...] = (OLDEST_WAIT, SERVICE_LEVEL, ASA, ABANDON_RATE)
"""The order the boards show them in: the live KPI first, then the window's."""

# How calls sounded (call_quality): the share of a window's calls with quality that were
# poor. Its breaches are decided like the others'; it has no tile, no window gauge and no
# rule of the KPI group: its alert reads the quality counters (metrics/export/rules.py).
POOR_QUALITY = Kpi(
    "poor_quality",
    "Poor calls",
    "Share of poor-quality calls",
    RATIO,
    False,
    True,
    "poor_quality_ratio",
    "poor_quality_ratio",
    ROLLING,
)

QUALITY_KPIS: tuple[Kpi, ...] = (POOR_QUALITY,)
"""The call-quality KPIs with a target: breach rows, not queue tiles."""

BY_NAME: dict[str, Kpi] = {k.name: k for k in (*QUEUE_KPIS, *QUALITY_KPIS)}


def rolling() -> tuple[Kpi, ...]:
    """The KPIs computed per rolling window, in ``QUEUE_KPIS`` order."""
    return tuple(k for k in QUEUE_KPIS if k.rolling)


def live() -> tuple[Kpi, ...]:
    """The KPIs computed as of the watermark, in ``QUEUE_KPIS`` order."""
    return tuple(k for k in QUEUE_KPIS if not k.rolling)
