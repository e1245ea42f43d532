"""The built-in wallboard page, for centres without Grafana: `/` (plain HTML/CSS/JS from
``dashboards/wallboard/``) and its data at `/api/wallboard`.

Data flow: a refresh job, run by ``services.refresher`` (on its own thread and DuckDB
connection in a running pipeline), turns the latest snapshot plus the ``sql/export/*.sql``
lists into one JSON document and publishes it; the routes only read what was
published. Tiles use the snapshot's numbers (the same ones `callpulse kpis` prints) and
the terminal board's breach rule: a KPI is in breach when it is past its target on a
window with at least ``min_calls`` offered calls (oldest wait: whenever it is past its
target). Each queue also gets the time in not-ready so far by reason (``not_ready_time``,
as the Grafana board's "Time not ready by reason"). Caller numbers appear only masked
(``caller_masked``).
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb

from metrics.kpi.snapshot import KpiSnapshot, QueueSnapshot, take_snapshot
from pipeline.core import sqlfiles
from pipeline.serve.http import Response

STATIC_DIR = Path(__file__).resolve().parent / "wallboard"
API_PATH = "/api/wallboard"
PUBLISHED = "wallboard"
ASSETS = {  # route -> (file, content type)
    "/": ("index.html", "text/html; charset=utf-8"),
    "/wallboard.css": ("wallboard.css", "text/css; charset=utf-8"),
    "/wallboard.js": ("wallboard.js", "text/javascript; charset=utf-8"),
}
AGENT_STATES = ("ready", "busy", "wrap", "not_ready")
LIST_LIMIT = 50
ABANDONED_LOOKBACK_S = 4 * 3600

OK, BREACH, NONE = "ok", "breach", "none"

# KPI tiles: key, label, snapshot field, higher is better, needs min_calls.
KPI_TILES: tuple[tuple[str, str, str, bool], ...] = (
    ("service_level", "Service level", "service_level", True),
    ("asa_s", "ASA", "asa_s", False),
    ("abandon_rate", "Abandon rate", "abandon_rate", False),
)


def status(value: float | None, target: float, higher_is_better: bool, enough: bool = True) -> str:
    """``breach`` past the target, ``ok`` within it, ``none`` if undefined or on too few calls."""
    if value is None or not enough:
        return NONE
    ok = value >= target if higher_is_better else value <= target
    return OK if ok else BREACH


def _local(ts: datetime | None, tz: ZoneInfo) -> str | None:
    return ts.astimezone(tz).strftime("%H:%M:%S") if ts is not None else None


def queue_tiles(q: QueueSnapshot, window: str) -> dict[str, dict[str, Any]]:
    """The tiles of one queue: value, status and target (where there is one)."""
    k = q.windows.get(window)
    t = q.targets
    enough = k is not None and k.offered >= t.min_calls
    tiles: dict[str, dict[str, Any]] = {
        "calls_waiting": {"label": "Calls waiting", "value": q.calls_waiting, "status": NONE},
        "oldest_wait_s": {
            "label": "Oldest wait",
            "value": q.oldest_wait_s,
            "target": t.oldest_wait_s,
            "higher_is_better": False,
            "status": status(q.oldest_wait_s, t.oldest_wait_s, False),
        },
    }
    targets = {"service_level": t.service_level, "asa_s": t.asa_s, "abandon_rate": t.abandon_rate}
    for key, label, field, higher in KPI_TILES:
        value = getattr(k, field) if k is not None else None
        tiles[key] = {
            "label": f"{label} {window}",
            "value": value,
            "target": targets[key],
            "higher_is_better": higher,
            "status": status(value, targets[key], higher, enough),
        }
    counts = dict.fromkeys(AGENT_STATES, 0)
    for (state, _reason), n in q.agents.items():
        if state in counts:
            counts[state] += n
    labels = {"ready": "Ready", "busy": "Busy", "wrap": "Wrap", "not_ready": "Not ready"}
    for state in AGENT_STATES:
        tiles[f"agents_{state}"] = {"label": labels[state], "value": counts[state], "status": NONE}
    reasons = not_ready_reasons(q)
    tiles["not_ready_time"] = {
        "label": "Time not ready",
        "value": sum(r["seconds"] for r in reasons),
        "reasons": reasons,
        "status": NONE,
    }
    return tiles


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
) -> dict[str, Any]:
    """The document `/api/wallboard` serves (pure: snapshot and list rows in, dict out)."""
    tz = ZoneInfo(timezone)
    queues, breaches = [], []
    for name, q in sorted(snapshot.queues.items()):
        tiles = queue_tiles(q, window)
        k = q.windows.get(window)
        queues.append(
            {
                "queue": name,
                "offered": k.offered if k else 0,
                "min_calls": q.targets.min_calls,
                "tiles": tiles,
            }
        )
        breaches += [
            {
                "queue": name,
                "kpi": key,
                "label": tile["label"],
                "value": tile["value"],
                "target": tile["target"],
                "higher_is_better": tile.get("higher_is_better", False),
            }
            for key, tile in tiles.items()
            if tile["status"] == BREACH
        ]
    wm = snapshot.watermark
    return {
        "watermark": wm.isoformat() if wm else None,
        "watermark_local": wm.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S") if wm else None,
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


def compute(con: duckdb.DuckDBPyConnection, snapshot: KpiSnapshot, timezone: str, window: str) -> dict[str, Any]:
    """Run the list queries (the refresher's thread) and build the document."""
    return wallboard_json(
        snapshot,
        sqlfiles.dicts(con, "export/waiting_calls", limit=LIST_LIMIT),
        sqlfiles.dicts(con, "export/abandoned_calls", limit=LIST_LIMIT, lookback_s=ABANDONED_LOOKBACK_S),
        sqlfiles.dicts(con, "export/logged_in_agents"),
        timezone,
        window,
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

    def job(con: duckdb.DuckDBPyConnection) -> bytes:
        snapshot = services.published.get("snapshot") or take_snapshot(con, config.windows)
        return json.dumps(compute(con, snapshot, config.timezone, window)).encode()

    services.refresher.add(PUBLISHED, job)
    if services.server is None:
        return
    for route, (filename, content_type) in ASSETS.items():
        body = (STATIC_DIR / filename).read_bytes()
        services.server.add(route, lambda body=body, ct=content_type: Response(body, ct))

    def api() -> Response:
        body = services.published.get(PUBLISHED)
        if body is None:
            return Response(b'{"error": "not ready"}', "application/json", status=503)
        return Response(body, "application/json")

    services.server.add(API_PATH, api)
