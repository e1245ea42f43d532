"""The KPI snapshot: every queue's rolling-window, latest-interval and live KPIs at
one watermark. The CLI (`callpulse kpis`), the exporter, the wallboard and the
breach check all read this one snapshot, so they can never disagree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime, timedelta
from typing import Any

import duckdb

from metrics.kpi.definitions import Kpi
from metrics.kpi.staffing import StaffingNeed, staffing_need
from pipeline.core import sqlfiles
from pipeline.core.records import WORK_STATES


@dataclass(frozen=True, slots=True)
class QueueKpis:
    """KPIs of one queue over one window or interval; None where undefined (no calls)."""

    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    short_abandoned: int = 0
    exited: int = 0
    waiting: int = 0
    answered_in_sl: int = 0
    service_level: float | None = None
    asa_s: float | None = None
    abandon_rate: float | None = None
    aht_s: float | None = None
    transfer_rate: float | None = None
    max_wait_s: float | None = None
    repeat_rate: float | None = None
    fcr: float | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> QueueKpis:
        """From a kpi_queue_ratios row; missing counts stay 0 and missing ratios None."""
        given = {f.name: row[f.name] for f in fields(cls) if row.get(f.name) is not None}
        return cls(**given)


@dataclass(frozen=True, slots=True)
class QueueTargets:
    service_level: float
    abandon_rate: float
    asa_s: float
    oldest_wait_s: float
    min_calls: int
    sl_threshold_s: float
    sl_formula: str
    poor_quality_ratio: float = 0.10


@dataclass(frozen=True, slots=True)
class QueueSnapshot:
    queue: str
    targets: QueueTargets
    windows: dict[str, QueueKpis]
    interval: QueueKpis | None
    """The current interval's KPIs; None where the snapshot was taken without them (the
    live one: its readers show the rolling windows)."""
    interval_start: datetime | None
    calls_waiting: int
    oldest_wait_s: float | None
    agents: dict[tuple[str, str], int] = field(default_factory=dict)  # (state, reason) -> count
    # (state, reason) -> seconds in that state so far, summed over those agents
    agent_seconds: dict[tuple[str, str], float] = field(default_factory=dict)
    staffing: StaffingNeed | None = None
    """Agents needed now, from the calls of ``KpiSnapshot.staffing_window``; None without a watermark."""

    def staffed(self) -> int:
        """Agents logged in to the queue now, in any state."""
        return sum(self.agents.values())

    def reading(self, kpi: Kpi, window: str) -> tuple[float | None, float, bool]:
        """``kpi``'s value (on ``window`` if it is a rolling KPI), its target, and whether
        ``window`` had at least min_calls offered calls: the arguments of ``kpi.verdict``."""
        k = self.windows.get(window)
        enough = k is not None and k.offered >= self.targets.min_calls
        holder = k if kpi.rolling else self
        value = getattr(holder, kpi.value) if holder is not None else None
        return value, getattr(self.targets, kpi.target), enough

    def staffing_fields(self) -> dict[str, Any]:
        """The agents needed beside those staffed (logged in, any state) and ready, as the
        JSON snapshot and the wallboard's tile show them; ``why`` says why there is no number."""
        need, staffed = self.staffing, self.staffed()
        return {
            "agents_needed": need.agents if need else None,
            "why": need.why if need else "no events yet",
            "model": need.model if need else None,
            "agents_staffed": staffed,
            "agents_ready": self.agents_by_state()["ready"],
            "short_by": need.short_by(staffed) if need else None,
        }

    def agents_by_state(self) -> dict[str, int]:
        """Agents per state now, whatever the reason, for each of ``WORK_STATES`` in order."""
        counts = dict.fromkeys(WORK_STATES, 0)
        for (state, _reason), n in self.agents.items():
            if state in counts:
                counts[state] += n
        return counts

    def not_ready_seconds(self) -> dict[str, float]:
        """Time in not-ready so far of the agents not ready now, by reason ('' if none given)."""
        return {reason or "": s for (state, reason), s in self.agent_seconds.items() if state == "not_ready"}


@dataclass(frozen=True, slots=True)
class KpiSnapshot:
    watermark: datetime | None
    interval_s: int
    queues: dict[str, QueueSnapshot]
    staffing_window: str | None = None
    """The rolling window whose calls give the agents needed (``staffing_window``)."""

    def to_json(self) -> dict[str, Any]:
        """The JSON shape of `callpulse kpis --format json` (stable keys, ISO times)."""
        return {
            "watermark": self.watermark.isoformat() if self.watermark else None,
            "interval_s": self.interval_s,
            "queues": {
                name: {
                    "targets": asdict(q.targets),
                    "windows": {w: asdict(k) for w, k in q.windows.items()},
                    "interval": None
                    if q.interval is None
                    else {
                        "start": q.interval_start.isoformat() if q.interval_start else None,
                        **asdict(q.interval),
                    },
                    "live": {
                        "calls_waiting": q.calls_waiting,
                        "oldest_wait_s": q.oldest_wait_s,
                        "agents": [
                            {
                                "state": s,
                                "reason": r or None,
                                "agents": n,
                                "state_s": q.agent_seconds.get((s, r)),
                            }
                            for (s, r), n in sorted(q.agents.items())
                        ],
                    },
                    "staffing": {"window": self.staffing_window, **q.staffing_fields()},
                }
                for name, q in sorted(self.queues.items())
            },
        }


def owned_only(snap: KpiSnapshot, owns: Callable[[str], bool]) -> KpiSnapshot:
    """The snapshot without the queues ``owns`` refuses (a worker sharing a group's queues
    shows its own: docs/kafka.md)."""
    kept = {name: q for name, q in snap.queues.items() if owns(name)}
    return snap if len(kept) == len(snap.queues) else replace(snap, queues=kept)


def staffing_window(windows: tuple[tuple[str, int], ...], interval_s: int) -> tuple[str, int] | None:
    """The rolling window the agents needed are computed on: the one as long as the
    reporting interval (15m by default), so the live need and a report's per-interval need
    see the same length of calls; failing that, the nearest (the shorter on a tie)."""
    if not windows:
        return None
    return min(windows, key=lambda w: (abs(w[1] - interval_s), w[1]))


def take_snapshot(
    con: duckdb.DuckDBPyConnection, windows: tuple[tuple[str, int], ...], current_interval: bool = True
) -> KpiSnapshot:
    """Read the current KPIs from a store's connection (read-only use is fine); without
    ``current_interval``, the current interval's KPIs are left out (``QueueSnapshot.interval``
    None: one statement fewer for the publisher, which takes a snapshot after every batch)."""
    state = sqlfiles.first(con, "schema/pipeline_state")
    watermark, interval_s = state[:2] if state else (None, 900)
    by_width: dict[int, dict[str, QueueKpis]] = {}
    if watermark is not None:
        # one statement for every window: the snapshot runs after every batch
        for row in sqlfiles.dicts(con, "kpi/queue_window", widths=[width for _, width in windows], wm=watermark):
            by_width.setdefault(int(row["interval_s"]), {})[row["queue"]] = QueueKpis.from_row(row)
    latest = (
        {r["queue"]: r for r in sqlfiles.dicts(con, "kpi/queue_latest_interval", wm=watermark, iv=interval_s)}
        if watermark and current_interval
        else {}
    )
    live = {r["queue"]: r for r in sqlfiles.dicts(con, "kpi/queue_live")}
    agents: dict[str, dict[tuple[str, str], int]] = {}
    agent_seconds: dict[str, dict[tuple[str, str], float]] = {}
    for r in sqlfiles.dicts(con, "kpi/agents_live"):
        agents.setdefault(r["queue"], {})[(r["state"], r["reason"])] = int(r["agents"])
        if r["state_s"] is not None:
            agent_seconds.setdefault(r["queue"], {})[(r["state"], r["reason"])] = float(r["state_s"])
    staff_window = staffing_window(windows, int(interval_s))
    patience: dict[str, dict[str, Any]] = {}
    if watermark is not None and staff_window is not None:
        rows = sqlfiles.dicts(
            con,
            "kpi/queue_patience",
            lo=watermark - timedelta(seconds=staff_window[1]),
            hi=watermark + timedelta(microseconds=1),
            wm=watermark,
        )
        patience = {r["queue"]: r for r in rows}
    interval_start = None
    if watermark is not None:
        epoch = int(watermark.timestamp()) // int(interval_s) * int(interval_s)
        interval_start = datetime.fromtimestamp(epoch, tz=watermark.tzinfo)
    queues: dict[str, QueueSnapshot] = {}
    for t in sqlfiles.dicts(con, "kpi/queue_targets"):
        name = t["queue"]
        lrow = latest.get(name)
        targets = QueueTargets(
            service_level=t["target_service_level"],
            abandon_rate=t["target_abandon_rate"],
            asa_s=t["target_asa_s"],
            oldest_wait_s=t["target_oldest_wait_s"],
            min_calls=t["min_calls"],
            sl_threshold_s=t["sl_threshold_s"],
            sl_formula=t["sl_formula"],
            poor_quality_ratio=t["target_poor_quality_ratio"],
        )
        kpis = {label: by_width.get(width, {}).get(name, QueueKpis()) for label, width in windows}
        need = None
        if watermark is not None and staff_window is not None:
            need = _need(kpis[staff_window[0]], patience.get(name, {}), staff_window[1], targets)
        queues[name] = QueueSnapshot(
            queue=name,
            targets=targets,
            windows=kpis,
            interval=(QueueKpis.from_row(lrow) if lrow else QueueKpis()) if current_interval else None,
            interval_start=interval_start,
            calls_waiting=int(live.get(name, {}).get("calls_waiting") or 0),
            oldest_wait_s=live.get(name, {}).get("oldest_wait_s"),
            agents=agents.get(name, {}),
            agent_seconds=agent_seconds.get(name, {}),
            staffing=need,
        )
    return KpiSnapshot(
        watermark=watermark,
        interval_s=int(interval_s),
        queues=queues,
        staffing_window=staff_window[0] if staff_window else None,
    )


def _need(k: QueueKpis, patience: dict[str, Any], width_s: int, t: QueueTargets) -> StaffingNeed:
    return staffing_need(
        offered=k.offered,
        short_abandoned=k.short_abandoned,
        abandoned=int(patience.get("abandoned") or 0),
        aht_s=k.aht_s,
        wait_s=float(patience.get("wait_s") or 0.0),
        period_s=width_s,
        target_s=t.sl_threshold_s,
        sl_target=t.service_level,
        min_calls=t.min_calls,
    )
