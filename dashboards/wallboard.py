"""The built-in wallboard page, for centres without Grafana: `/` (plain HTML/CSS/JS from
``dashboards/wallboard/``) and its data at `/api/wallboard`.

Data flow: a refresh job, run by ``services.refresher`` (on its own thread and DuckDB
connection in a running pipeline), turns the latest snapshot plus the ``sql/export/*.sql``
lists into one JSON document and publishes it; the routes only read what was
published. Tiles use the snapshot's numbers (the same ones `callpulse kpis` prints) and
the KPI table's rules (metrics.kpi.definitions), as the terminal board does: a KPI is
in breach when it is past its target, a gated one only on a window with at least
``min_calls`` offered calls. KPI tiles carry their ``unit`` and come in the page's
order, so the page keeps no list of its own. Each queue also gets the time in not-ready
so far by reason (``not_ready_time``, as the Grafana board's "Time not ready by
reason"). Caller numbers appear only masked (``caller_masked``). ``data_age_s`` is how old
the data is when the document is made: the wall clock minus the watermark, as
``callpulse_watermark_lag_seconds`` on /metrics; the page adds the time since it got the
document (so a feed that stopped ages too) and says STALE past ``stale_after_s``
(``[wallboard] stale_after``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb

from metrics.kpi.definitions import BOARD_ORDER, LIVE, POOR_QUALITY, Kpi
from metrics.kpi.snapshot import KpiSnapshot, QueueSnapshot, take_snapshot
from pipeline.core import sqlfiles
from pipeline.core.config import WallboardSettings, parse_duration
from pipeline.serve.http import Response

STATIC_DIR = Path(__file__).resolve().parent / "wallboard"
API_PATH = "/api/wallboard"
PUBLISHED = "wallboard"
ASSETS = {  # route -> (file, content type)
    "/": ("index.html", "text/html; charset=utf-8"),
    "/wallboard.css": ("wallboard.css", "text/css; charset=utf-8"),
    "/wallboard.js": ("wallboard.js", "text/javascript; charset=utf-8"),
}
LIST_LIMIT = 50
ABANDONED_LOOKBACK_S = 4 * 3600

OK, BREACH, NONE = "ok", "breach", "none"
# From this share of its target the oldest wait is a risk cue: time to act before it breaches.
NEAR_TARGET = 0.8


def status(verdict: bool | None) -> str:
    """``ok`` within the target, ``breach`` past it, ``none`` if it cannot be judged."""
    return NONE if verdict is None else (OK if verdict else BREACH)


def _local(ts: datetime | None, tz: ZoneInfo) -> str | None:
    return ts.astimezone(tz).strftime("%H:%M:%S") if ts is not None else None


def kpi_tile(q: QueueSnapshot, kpi: Kpi, window: str) -> dict[str, Any]:
    """One KPI's tile: value, unit, target and status by the KPI table's rules."""
    value, target, enough = q.reading(kpi, window)
    tile = {
        "label": f"{kpi.label} {window}" if kpi.rolling else kpi.label,
        "value": value,
        "unit": kpi.unit,
        "target": target,
        "higher_is_better": kpi.higher_is_better,
        "status": status(kpi.verdict(value, target, enough)),
    }
    if value is not None and kpi.gated and not enough:
        # Grey must say why: too few calls to judge, not "fine".
        tile["why"] = f"fewer than {q.targets.min_calls} calls"
    return tile


def breaching_tiles(q: QueueSnapshot) -> list[dict[str, Any]]:
    """Every KPI tile of ``q`` past its target, on every window (the label names it)."""
    out = []
    for kpi in BOARD_ORDER:
        for window in q.windows if kpi.rolling else [LIVE]:
            tile = kpi_tile(q, kpi, window)
            if tile["status"] == BREACH:
                out.append({"kpi": kpi.value, "window": window, **tile})
    return out


def risk_cues(q: QueueSnapshot) -> list[dict[str, Any]]:
    """What a supervisor should act on before a KPI breaches: callers waiting with no agent
    ready, and an oldest wait near (not yet past) its target."""
    cues: list[dict[str, Any]] = []
    if q.calls_waiting and not q.agents_by_state().get("ready"):
        cues.append({"kind": "no_ready", "waiting": q.calls_waiting})
    target = q.targets.oldest_wait_s
    if q.oldest_wait_s is not None and NEAR_TARGET * target <= q.oldest_wait_s <= target:
        cues.append({"kind": "wait_near_target", "value": q.oldest_wait_s, "target": target})
    return cues


def queue_tiles(q: QueueSnapshot, window: str) -> dict[str, dict[str, Any]]:
    """The tiles of one queue, in the page's order: value, status and target (where there is one)."""
    tiles: dict[str, dict[str, Any]] = {
        "calls_waiting": {"label": "Calls waiting", "value": q.calls_waiting, "status": NONE},
    }
    for kpi in BOARD_ORDER:
        tiles[kpi.value] = kpi_tile(q, kpi, window)
    for state, n in q.agents_by_state().items():
        label = state.replace("_", " ").capitalize()
        tiles[f"agents_{state}"] = {"label": label, "value": n, "status": NONE}
    reasons = not_ready_reasons(q)
    tiles["not_ready_time"] = {
        "label": "Time not ready",
        "value": sum(r["seconds"] for r in reasons),
        "reasons": reasons,
        "status": NONE,
    }
    return tiles


def quality_tile(q: QueueSnapshot, window: str, row: Mapping[str, Any] | None) -> dict[str, Any]:
    """The share of the window's calls with quality that sounded poor (``row``: the queue's
    sql/export/quality_window.sql row, None without quality), judged like a window KPI:
    against its target, on at least min_calls calls with quality."""
    value = None if row is None else row["poor_quality_ratio"]
    calls = 0 if row is None else int(row["calls"])
    target = q.targets.poor_quality_ratio
    enough = calls >= q.targets.min_calls
    tile = {
        "label": f"{POOR_QUALITY.label} {window}",
        "value": value,
        "unit": POOR_QUALITY.unit,
        "target": target,
        "higher_is_better": POOR_QUALITY.higher_is_better,
        "status": status(POOR_QUALITY.verdict(value, target, enough)),
    }
    if value is not None and not enough:
        tile["why"] = f"fewer than {q.targets.min_calls} calls"
    return tile


def not_ready_reasons(q: QueueSnapshot) -> list[dict[str, Any]]:
    """Time in not-ready so far of the queue's agents not ready now, per reason, longest first
    (the Grafana board's ``callpulse_agents_not_ready_seconds{queue,reason}``); no reason is None."""
    by_length = sorted(q.not_ready_seconds().items(), key=lambda rs: (-rs[1], rs[0]))
    return [{"reason": reason or None, "seconds": s} for reason, s in by_length]


def wallboard_json(
    snapshot: KpiSnapshot,
    waiting: list[dict[str, Any]],
    abandoned: list[dict[str, Any]],
    agents: list[dict[str, Any]],
    timezone: str,
    window: str,
    now: datetime | None = None,
    stale_after_s: float = WallboardSettings().stale_after_s,
    quality: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """The document `/api/wallboard` serves (pure: snapshot and list rows in, dict out);
    ``now``: the wall clock, for the data's age; ``stale_after_s``: the age past which the
    page says STALE; ``quality``: each queue's quality_window row (the last tile)."""
    tz = ZoneInfo(timezone)
    queues, breaches = [], []
    for name, q in sorted(snapshot.queues.items()):
        tiles = queue_tiles(q, window)
        tiles["poor_quality"] = quality_tile(q, window, (quality or {}).get(name))
        k = q.windows.get(window)
        queues.append(
            {
                "queue": name,
                "offered": k.offered if k else 0,
                "min_calls": q.targets.min_calls,
                "tiles": tiles,
                "risks": risk_cues(q),
            }
        )
        breaches += [
            {
                "queue": name,
                "kpi": b["kpi"],
                "window": b["window"],
                "label": b["label"],
                "value": b["value"],
                "unit": b["unit"],
                "target": b["target"],
                "higher_is_better": b["higher_is_better"],
            }
            for b in breaching_tiles(q)
        ]
    wm = snapshot.watermark
    return {
        "watermark": wm.isoformat() if wm else None,
        "watermark_local": wm.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S") if wm else None,
        "data_age_s": _age_s(wm, now),
        "stale_after_s": stale_after_s,
        "timezone": timezone,
        "window": window,
        "queues": queues,
        "breaches": breaches,
        "waiting": [
            {
                "queue": r["queue"],
                "caller": r["caller_masked"],
                "wait_s": r["wait_s"],
                "since": _local(r["offered_at"], tz),
            }
            for r in waiting
        ],
        "abandoned": [
            {
                "time": _local(r["abandoned_at"], tz),
                "queue": r["queue"],
                "wait_s": r["wait_s"],
                "caller": r["caller_masked"],
            }
            for r in abandoned
        ],
        "agents": [
            {
                "agent_id": r["agent_id"],
                "state": r["state"],
                "reason": r["reason"] or None,
                "queues": list(r["queues"] or []),
                "since": _local(r["started_at"], tz),
                "in_state_s": r["duration_s"],
            }
            for r in agents
        ],
    }


def compute(
    con: duckdb.DuckDBPyConnection,
    snapshot: KpiSnapshot,
    timezone: str,
    window: str,
    now: datetime | None = None,
    stale_after_s: float = WallboardSettings().stale_after_s,
) -> dict[str, Any]:
    """Run the list queries (the refresher's thread) and build the document."""
    quality = {}
    if snapshot.watermark is not None:
        lo = snapshot.watermark - timedelta(seconds=parse_duration(window, "window"))
        hi = snapshot.watermark + timedelta(microseconds=1)
        quality = {r["queue"]: r for r in sqlfiles.dicts(con, "export/quality_window", lo=lo, hi=hi)}
    return wallboard_json(
        snapshot,
        sqlfiles.dicts(con, "export/waiting_calls", limit=LIST_LIMIT),
        sqlfiles.dicts(con, "export/abandoned_calls", limit=LIST_LIMIT, lookback_s=ABANDONED_LOOKBACK_S),
        sqlfiles.dicts(con, "export/logged_in_agents"),
        timezone,
        window,
        now,
        stale_after_s,
        quality,
    )


def default_window(windows: tuple[tuple[str, int], ...]) -> str:
    labels = [label for label, _ in windows]
    return "15m" if "15m" in labels else labels[0]


def attach(services: Any) -> None:
    """Add the refresh job and, if the services serve HTTP, the page's routes.

    The job runs after the "snapshot" job (jobs run in the order they were added) and
    reuses the snapshot it just published."""
    config = services.config
    window = default_window(config.windows)

    def job(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
        snapshot = services.published.get("snapshot") or take_snapshot(con, config.windows)
        now = services.engine.clock()
        return compute(con, snapshot, config.timezone, window, now, config.wallboard.stale_after_s)

    services.refresher.add(PUBLISHED, job)
    if services.server is None:
        return
    for route, (filename, content_type) in ASSETS.items():
        body = (STATIC_DIR / filename).read_bytes()
        services.server.add(route, lambda body=body, ct=content_type: Response(body, ct))

    def api() -> Response:
        doc = services.published.get(PUBLISHED)
        if doc is None:
            return Response(b'{"error": "not ready"}', "application/json", status=503)
        # The age as of this request, not as of the last refresh: a quiet pipeline
        # publishes nothing new, and its data gets older all the same.
        return Response(json.dumps(with_age(doc, services.engine.clock())).encode(), "application/json")

    services.server.add(API_PATH, api)


def with_age(doc: dict[str, Any], now: datetime) -> dict[str, Any]:
    """``doc`` with ``data_age_s`` as of ``now`` (the wall clock minus its watermark)."""
    wm = doc.get("watermark")
    return {**doc, "data_age_s": _age_s(datetime.fromisoformat(wm) if wm else None, now)}


def _age_s(watermark: datetime | None, now: datetime | None) -> float | None:
    """How old the data is: the wall clock minus the watermark (None without either)."""
    return (now - watermark).total_seconds() if watermark and now else None
