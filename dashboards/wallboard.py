"""The built-in wallboard page, for centres without Grafana: `/` (plain HTML/CSS/JS from
``dashboards/wallboard/``) and its data at `/api/wallboard`.

Data flow: the document is the latest snapshot plus the ``sql/export/*.sql`` lists,
rebuilt whenever either changes (``Board``): the snapshot after every batch (pushed by
the publisher thread, so a stored call reaches the tiles without waiting for a refresh),
the lists by a job of ``services.refresher`` (on its own thread and DuckDB connection in
a running pipeline); the routes only read what was published. Tiles use the snapshot's
numbers (the same ones `callpulse kpis` prints) and the KPI table's rules
(metrics.kpi.definitions), as the terminal board does: a KPI is in breach when it is
past its target, a gated one only on a window with at least ``min_calls`` offered calls.
KPI tiles carry their ``unit`` and come in the page's order, so the page keeps no list
of its own. Each queue also gets the time in not-ready so far by reason
(``not_ready_time``, as the Grafana board's "Time not ready by reason"). Caller numbers
appear only masked (``caller_masked``). ``data_age_s`` is how old the data is when the
document is made: the wall clock minus the watermark, as
``callpulse_watermark_lag_seconds`` on /metrics; the page adds the time since it got the
document (so a feed that stopped ages too) and says STALE past ``stale_after_s``
(``[wallboard] stale_after``).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import duckdb

from metrics.kpi.definitions import BOARD_ORDER, LIVE, POOR_QUALITY, Kpi
from metrics.kpi.snapshot import KpiSnapshot, QueueSnapshot, take_snapshot
from pipeline.core import sqlfiles
from pipeline.core.config import WallboardSettings
from pipeline.serve.http import Response

STATIC_DIR = Path(__file__).resolve().parent / "wallboard"
API_PATH = "/api/wallboard"
PUBLISHED = "wallboard"
LIVE_JOB = "wallboard_live"
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
    label = f"{kpi.label} {window}" if kpi.rolling else kpi.label
    return judged_tile(kpi, label, value, target, enough, q.targets.min_calls)


def judged_tile(
    kpi: Kpi, label: str, value: float | None, target: float, enough: bool, min_calls: int
) -> dict[str, Any]:
    """A tile showing ``value`` against ``target``, judged by ``kpi``'s rules (``enough``:
    the window had at least ``min_calls`` calls)."""
    tile = {
        "label": label,
        "value": value,
        "unit": kpi.unit,
        "target": target,
        "higher_is_better": kpi.higher_is_better,
        "status": status(kpi.verdict(value, target, enough)),
    }
    if value is not None and kpi.gated and not enough:
        # Grey must say why: too few calls to judge, not "fine".
        tile["why"] = f"fewer than {min_calls} calls"
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
    ready, fewer agents logged in than the queue needs, and an oldest wait near (not yet
    past) its target."""
    cues: list[dict[str, Any]] = []
    if q.calls_waiting and not q.agents_by_state().get("ready"):
        cues.append({"kind": "no_ready", "waiting": q.calls_waiting})
    need = q.staffing
    short = need.short_by(q.staffed()) if need else None
    if need and short:
        cues.append({"kind": "understaffed", "needed": need.agents, "staffed": q.staffed(), "short_by": short})
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
    tiles["agents_needed"] = staffing_tile(q)
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


def staffing_tile(q: QueueSnapshot) -> dict[str, Any]:
    """Agents needed now (metrics.kpi.staffing, from the snapshot's staffing window) beside
    agents staffed (logged in, any state) and ready; without a number, ``why``."""
    f = q.staffing_fields()
    tile: dict[str, Any] = {
        "label": "Agents needed",
        "value": f["agents_needed"],
        "staffed": f["agents_staffed"],
        "ready": f["agents_ready"],
        "short_by": f["short_by"],
        "model": f["model"],
        "status": NONE,
    }
    if f["agents_needed"] is None:
        tile["why"] = f["why"]
    return tile


def quality_tile(q: QueueSnapshot, window: str, row: Mapping[str, Any] | None) -> dict[str, Any]:
    """The share of the window's calls with quality that sounded poor (``row``: the queue's
    sql/export/quality_window.sql row, None without quality), judged like a window KPI:
    against its target, on at least min_calls calls with quality."""
    value = None if row is None else row["poor_quality_ratio"]
    calls = 0 if row is None else int(row["calls"])
    enough = calls >= q.targets.min_calls
    label = f"{POOR_QUALITY.label} {window}"
    return judged_tile(POOR_QUALITY, label, value, q.targets.poor_quality_ratio, enough, q.targets.min_calls)


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
        "staffing_window": snapshot.staffing_window,
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


class Lists(NamedTuple):
    """What the refresher's cycle reads for the page, off the batches' path."""

    waiting: list[dict[str, Any]]
    abandoned: list[dict[str, Any]]
    agents: list[dict[str, Any]]
    quality: dict[str, dict[str, Any]]
    """Each queue's sql/export/quality_window.sql row (the poor-calls tile)."""


def read_lists(
    con: duckdb.DuckDBPyConnection,
    watermark: datetime | None = None,
    waiting_since: datetime | None = None,
    window_s: int = 900,
) -> Lists:
    """The page's lists (the refresher's thread): waiting calls, recent abandons, logged-in
    agents, and the quality of the window of ``window_s`` ending at ``watermark``;
    ``waiting_since``: no call offered before it can be waiting (None: not known)."""
    quality: dict[str, dict[str, Any]] = {}
    if watermark is not None:
        lo, hi = watermark - timedelta(seconds=window_s), watermark + timedelta(microseconds=1)
        quality = {r["queue"]: r for r in sqlfiles.dicts(con, "export/quality_window", lo=lo, hi=hi)}
    return Lists(
        sqlfiles.dicts(con, "export/waiting_calls", limit=LIST_LIMIT, since=waiting_since),
        sqlfiles.dicts(con, "export/abandoned_calls", limit=LIST_LIMIT, lookback_s=ABANDONED_LOOKBACK_S),
        sqlfiles.dicts(con, "export/logged_in_agents"),
        quality,
    )


def default_window(windows: tuple[tuple[str, int], ...]) -> str:
    labels = [label for label, _ in windows]
    return "15m" if "15m" in labels else labels[0]


class Board:
    """The document the feed serves, rebuilt whenever its tiles or its lists change: the
    tiles after every batch (the snapshot, pushed by the publisher thread), the lists when
    the refresher's cycle reads them. Built under one lock from the latest snapshot
    published, so documents are published in the order they are built and a count on
    the page never goes back."""

    def __init__(self, build: Any, snapshot: Any) -> None:
        self._build = build
        self._snapshot = snapshot
        self._lock = threading.Lock()
        self._lists: Lists | None = None
        self.doc: dict[str, Any] | None = None

    def tiles(self) -> dict[str, Any] | None:
        """A new snapshot was published (publisher thread): the document with the last lists read."""
        with self._lock:
            snapshot = self._snapshot()
            if snapshot is not None and self._lists is not None:
                self.doc = self._build(snapshot, self._lists)
            return self.doc

    def lists(self, lists: Lists, fallback: KpiSnapshot) -> dict[str, Any]:
        """New lists (refresher thread): the document with them and the latest snapshot."""
        with self._lock:
            self._lists = lists
            self.doc = self._build(self._snapshot() or fallback, lists)
            return self.doc


def attach(services: Any) -> Board:
    """Add the refresh jobs and, if the services serve HTTP, the page's routes.

    The tiles follow every batch: a live job (after the "snapshot" job, on the publisher
    thread) rebuilds the document from the snapshot just published. The lists (waiting
    calls, recent abandons, agents) read more rows and are refreshed by the refresher's
    cycle, off the batches' path."""
    config = services.config
    window = default_window(config.windows)

    def build(snapshot: KpiSnapshot, lists: Lists) -> dict[str, Any]:
        now = services.engine.clock()
        return wallboard_json(
            snapshot,
            lists.waiting,
            lists.abandoned,
            lists.agents,
            config.timezone,
            window,
            now,
            config.wallboard.stale_after_s,
            lists.quality,
        )

    board = Board(build, lambda: services.published.get("snapshot"))

    def lists_job(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
        # the watermark this read sees (a snapshot published meanwhile may be newer); a call
        # offered longer before it than the longest orphan_after is closed, not waiting
        state = sqlfiles.first(con, "schema/pipeline_state")
        wm = state[0] if state else None
        orphan_s = max(s.orphan_after_s for s in (config.defaults, *config.queues.values()))
        since = wm - timedelta(seconds=orphan_s) if wm is not None else None
        lists = read_lists(con, wm, since, dict(config.windows)[window])
        fallback = services.published.get("snapshot") or take_snapshot(con, config.windows, current_interval=False)
        return board.lists(lists, fallback)

    services.refresher.add(LIVE_JOB, lambda _con: board.tiles(), live=True)
    services.refresher.add(PUBLISHED, lists_job)
    if services.server is None:
        return board
    for route, (filename, content_type) in ASSETS.items():
        body = (STATIC_DIR / filename).read_bytes()
        services.server.add(route, lambda body=body, ct=content_type: Response(body, ct))

    feed_body = FeedBody()

    def api() -> Response:
        doc = board.doc
        if doc is None:
            return Response(b'{"error": "not ready"}', "application/json", status=503)
        return Response(feed_body(doc, services.engine.clock()), "application/json")

    services.server.add(API_PATH, api)
    return board


class FeedBody:
    """The feed's JSON for a document: encoded once while it is the latest (the board replaces
    it whole), with ``data_age_s`` as of each request: a quiet pipeline publishes nothing
    new, and its data gets older all the same. Many boards polling cost one encoding."""

    def __init__(self) -> None:
        self._last: tuple[dict[str, Any], bytes] | None = None  # a document and its encoding, replaced whole

    def __call__(self, doc: dict[str, Any], now: datetime) -> bytes:
        last = self._last
        if last is None or last[0] is not doc:
            last = (doc, json.dumps({k: v for k, v in doc.items() if k != "data_age_s"}).encode())
            self._last = last
        age = json.dumps(age_of(doc, now)).encode()
        head = last[1][:-1]  # the object without its closing brace
        return head + (b", " if head != b"{" else b"") + b'"data_age_s": ' + age + b"}"


def with_age(doc: dict[str, Any], now: datetime) -> dict[str, Any]:
    """``doc`` with ``data_age_s`` as of ``now`` (the wall clock minus its watermark)."""
    return {**doc, "data_age_s": age_of(doc, now)}


def age_of(doc: dict[str, Any], now: datetime) -> float | None:
    """How old ``doc``'s data is at ``now`` (None without a watermark)."""
    wm = doc.get("watermark")
    return _age_s(datetime.fromisoformat(wm) if wm else None, now)


def _age_s(watermark: datetime | None, now: datetime | None) -> float | None:
    """How old the data is: the wall clock minus the watermark (None without either)."""
    return (now - watermark).total_seconds() if watermark and now else None
