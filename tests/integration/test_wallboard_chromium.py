"""The built-in wallboard in a real headless Chromium: its tiles show the same numbers as
`callpulse kpis --format json` at the same watermark, breached KPIs are drawn in the
breach colour, each queue's time not ready by reason is the sum of ``state_s`` of its
not-ready agents per reason in that JSON, no tile overflows at 1920x1080, no caller
number appears in the clear, and a 1920x1080 screenshot is
taken (saved to dashboards/wallboard/screenshot.png, the README's picture, when
CALLPULSE_UPDATE_SCREENSHOT=1).

The page is served by the same code path as `callpulse demo`: an engine over a DuckDB
file made by replaying simulated events, with ``start_services`` on it. Chromium is
driven through the DevTools protocol (``--remote-debugging-port`` + websocket-client).
"""

from __future__ import annotations

import base64
import itertools
import json
import math
import os
import re
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import websocket

from dashboards import wallboard
from devtools.procs import LOOPBACK, ManagedProcess, free_port, refuse_if_services_off, wait_until
from pipeline.cli.services import start_services
from pipeline.core.config import load_config
from pipeline.core.engine import Engine
from pipeline.ingest.sources.simulator import SimConfig, simulate
from tests.helpers import CLOCK, PII_KEY, batch
from tests.support.cli import Cli

pytestmark = pytest.mark.chromium

UPDATE_SCREENSHOT_ENV = "CALLPULSE_UPDATE_SCREENSHOT"  # =1: also write SCREENSHOT
SCREENSHOT = Path(wallboard.__file__).resolve().parent / "wallboard" / "screenshot.png"
EVENTS = 15_000  # the simulated day up to the 10:00 peak: every queue busy, some in breach
BREACH_RGB = "rgb(185, 28, 28)"  # --breach in wallboard.css
OK_RGB = "rgb(21, 128, 61)"  # --ok
MAX_REASONS = 3  # wallboard.js: past this many reasons the rest are folded into "+N more"


class DevTools:
    """The smallest DevTools-protocol client: one page target, numbered commands."""

    def __init__(self, port: int) -> None:
        targets = json.loads(urllib.request.urlopen(f"http://{LOOPBACK}:{port}/json/list", timeout=5).read())
        page = next(t for t in targets if t["type"] == "page")
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=30, suppress_origin=True)
        self.ids = itertools.count(1)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        msg_id = next(self.ids)
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        while True:
            reply = json.loads(self.ws.recv())
            if reply.get("id") == msg_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return dict(reply.get("result", {}))

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"page error: {result['exceptionDetails']}")
        return result["result"].get("value")

    def close(self) -> None:
        self.ws.close()


@pytest.fixture
def chromium(tmp_path: Path) -> Iterator[DevTools]:
    refuse_if_services_off("chromium")
    port = free_port()
    proc = ManagedProcess(
        [
            "chromium",
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--hide-scrollbars",
            "--window-size=1920,1080",
            f"--remote-debugging-port={port}",
            "--remote-allow-origins=*",
            f"--user-data-dir={tmp_path / 'chromium-profile'}",
            "about:blank",
        ],
        tmp_path / "chromium.log",
        name="chromium",
    ).start()
    try:
        proc.wait_ready(
            lambda: urllib.request.urlopen(f"http://{LOOPBACK}:{port}/json/version", timeout=2),
            60,
            "chromium's DevTools endpoint",
        )
        tools = DevTools(port)
        try:
            yield tools
        finally:
            tools.close()
    finally:
        proc.stop()


def _config_file(tmp_path: Path, port: int) -> Path:
    path = tmp_path / "callpulse.toml"
    path.write_text(f"""
[site]
timezone = "Asia/Shanghai"

[pipeline]
db = "{tmp_path / "wallboard.duckdb"}"

[exporter]
port = {port}
""")
    return path


def _replay(config_path: Path) -> None:
    cfg = load_config(config_path)
    records = list(itertools.islice(simulate(SimConfig()), EVENTS))
    with Engine.open(cfg, PII_KEY, clock=lambda: CLOCK) as engine:
        for start in range(0, len(records), 2_500):
            engine.process(batch(records[start : start + 2_500], "simulator", start))


@contextmanager
def _board_on_screen(
    tmp_path: Path, chromium: DevTools, query: str = "", size: tuple[int, int] | None = None
) -> Iterator[str]:
    """The replayed morning served as in `callpulse demo`, open in Chromium (at ``size``,
    with ``query`` in the address) and loaded; yields the board's URL."""
    port = free_port()
    config_path = _config_file(tmp_path, port)
    _replay(config_path)
    cfg = load_config(config_path)
    url = f"http://{LOOPBACK}:{port}/"
    with Engine.open(cfg, PII_KEY, clock=lambda: CLOCK) as engine:
        services = start_services(engine, cfg)
        try:
            chromium.call("Page.enable")
            if size is not None:
                chromium.call(
                    "Emulation.setDeviceMetricsOverride",
                    width=size[0],
                    height=size[1],
                    deviceScaleFactor=1,
                    mobile=False,
                )
            chromium.call("Page.navigate", url=url + query)
            wait_until(
                lambda: chromium.evaluate("document.body && document.body.dataset.loaded === 'true'"),
                30,
                "the wallboard to load its data",
            )
            yield url
        finally:
            services.close()


def _kpis_json(cli: Cli, config_path: Path) -> dict[str, Any]:
    out = cli("kpis", "--format", "json", "--config", config_path)
    assert out.returncode == 0, out.stderr
    return dict(json.loads(out.stdout))


def _expected_tiles(queue: dict[str, Any], window: str) -> dict[str, tuple[Any, str]]:
    """(value, status) per tile from the kpis JSON, by the terminal board's rule."""
    t, k, live = queue["targets"], queue["windows"][window], queue["live"]
    enough = k["offered"] >= t["min_calls"]

    def rule(value: float | None, target: float, higher: bool, gated: bool = True) -> str:
        if value is None or (gated and not enough):
            return "none"
        return "ok" if (value >= target if higher else value <= target) else "breach"

    agents = {
        s: sum(a["agents"] for a in live["agents"] if a["state"] == s) for s in ("ready", "busy", "wrap", "not_ready")
    }
    return {
        "calls_waiting": (live["calls_waiting"], "none"),
        "oldest_wait_s": (
            live["oldest_wait_s"],
            rule(live["oldest_wait_s"], t["oldest_wait_s"], False, False),
        ),
        "service_level": (k["service_level"], rule(k["service_level"], t["service_level"], True)),
        "asa_s": (k["asa_s"], rule(k["asa_s"], t["asa_s"], False)),
        "abandon_rate": (k["abandon_rate"], rule(k["abandon_rate"], t["abandon_rate"], False)),
        **{f"agents_{s}": (n, "none") for s, n in agents.items()},
        "not_ready_time": (sum(_not_ready_by_reason(queue).values()), "none"),
    }


def _expected_risks(queue: dict[str, Any]) -> dict[str, str]:
    """Tile -> risk cue from the kpis JSON: callers waiting with no agent ready; an oldest
    wait at 80 % or more of its target but not past it."""
    t, live = queue["targets"], queue["live"]
    ready = sum(a["agents"] for a in live["agents"] if a["state"] == "ready")
    out = {}
    if live["calls_waiting"] > 0 and ready == 0:
        out["agents_ready"] = "no_ready"
    wait = live["oldest_wait_s"]
    if wait is not None and 0.8 * t["oldest_wait_s"] <= wait <= t["oldest_wait_s"]:
        out["oldest_wait_s"] = "wait_near_target"
    return out


def _not_ready_by_reason(queue: dict[str, Any]) -> dict[str, float]:
    """Seconds in not-ready so far per reason ("" for none): the not-ready agents' state_s summed."""
    out: dict[str, float] = {}
    for a in queue["live"]["agents"]:
        if a["state"] == "not_ready" and a["state_s"] is not None:
            reason = a["reason"] or ""
            out[reason] = out.get(reason, 0.0) + float(a["state_s"])
    return out


def _short(seconds: float) -> str:
    """The page's compact time (fmtShort in wallboard.js), written out independently."""
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    return f"{s // 3600}h {s % 3600 // 60:02d}m"


READ_TILES = """(() => Array.from(document.querySelectorAll('.tile')).map(el => ({
  queue: el.dataset.queue, kpi: el.dataset.kpi, value: el.dataset.value, status: el.dataset.status,
  risk: el.dataset.risk || '', note: el.querySelector('.target') ? el.querySelector('.target').textContent : '',
  text: (el.querySelector('.value') || el.querySelector('.reason-list')).textContent,
  bg: getComputedStyle(el).backgroundColor})))()"""

READ_REASONS = """(() => Array.from(document.querySelectorAll('.tile[data-kpi="not_ready_time"]')).map(el => ({
  queue: el.dataset.queue,
  chips: Array.from(el.querySelectorAll('.reason')).map(c => ({
    reason: c.dataset.reason, seconds: c.dataset.seconds, more: c.dataset.more,
    name: c.querySelector('.reason-name').textContent, time: c.querySelector('.reason-time').textContent,
    shown: c.querySelector('.reason-name').scrollWidth <= c.querySelector('.reason-name').clientWidth + 1})),
  none: el.querySelector('.reason-none') !== null})))()"""

# Elements drawn past their box (text cut or spilling), and the page's width: nothing may overflow at 1920 wide.
READ_OVERFLOW = """(() => ({
  page: document.documentElement.scrollWidth,
  tiles: Array.from(document.querySelectorAll('.tile, .queue-name')).filter(el =>
    el.scrollWidth > el.clientWidth + 1 || el.scrollHeight > el.clientHeight + 1).map(el =>
    (el.dataset.queue || '') + ' ' + (el.dataset.kpi || el.className)),
  rows: Array.from(document.querySelectorAll('.queue')).map(el => el.getBoundingClientRect().height)}))()"""

# The page redrawn from its own document with many, long not-ready reasons in every queue.
MANY_REASONS = [
    {"reason": "break", "seconds": 3725.0},
    {"reason": "a-very-long-pause-reason-from-the-pbx", "seconds": 1830.0},
    {"reason": "training", "seconds": 754.0},
    {"reason": "meeting", "seconds": 301.0},
    {"reason": None, "seconds": 45.0},
]
REDRAW_MANY_REASONS = """(async () => {
  const data = await (await fetch('/api/wallboard', {cache: 'no-store'})).json();
  for (const q of data.queues) q.tiles.not_ready_time.reasons = %s;
  renderQueues(data);
  return %s;
})()"""


def test_wallboard_tiles_match_kpis_json(cli: Cli, tmp_path: Path, chromium: DevTools) -> None:
    port = free_port()
    config_path = _config_file(tmp_path, port)
    _replay(config_path)
    expected = _kpis_json(cli, config_path)  # read-only, before the server reopens the file
    cfg = load_config(config_path)
    window = wallboard.default_window(cfg.windows)
    # The server's wall clock 42 s after the newest event: a live board, as in the README.
    now = datetime.fromisoformat(expected["watermark"]) + timedelta(seconds=42)
    with Engine.open(cfg, PII_KEY, clock=lambda: now) as engine:
        services = start_services(engine, cfg)
        try:
            url = f"http://{LOOPBACK}:{port}/"
            api = json.loads(urllib.request.urlopen(url + "api/wallboard", timeout=10).read())
            assert api["watermark"] == expected["watermark"]
            chromium.call("Page.enable")
            chromium.call(
                "Emulation.setDeviceMetricsOverride",
                width=1920,
                height=1080,
                deviceScaleFactor=1,
                mobile=False,
            )
            chromium.call("Page.navigate", url=url)
            wait_until(
                lambda: chromium.evaluate("document.body && document.body.dataset.loaded === 'true'"),
                30,
                "the wallboard to load its data",
            )
            tiles = chromium.evaluate(READ_TILES)
            reasons = chromium.evaluate(READ_REASONS)
            overflow = chromium.evaluate(READ_OVERFLOW)
            shot = chromium.call("Page.captureScreenshot", format="png")
            crowded = chromium.evaluate(REDRAW_MANY_REASONS % (json.dumps(MANY_REASONS), READ_OVERFLOW.strip()))
            crowded_tiles = chromium.evaluate(READ_REASONS)
            body_text = chromium.evaluate("document.body.innerText")
            page_watermark = chromium.evaluate("document.body.dataset.watermark")
            age_text = chromium.evaluate("document.getElementById('age').textContent")
            status_text = chromium.evaluate("document.getElementById('status').textContent")
            banner = chromium.evaluate(
                "document.getElementById('banner').hidden ? '' : document.getElementById('banner').textContent"
            )
        finally:
            services.close()

    assert page_watermark == expected["watermark"]
    # The data's age: the server's wall clock (CLOCK) minus the watermark, in the feed and as text.
    # The data's age: the server's wall clock minus the watermark, in the feed (as of the
    # request) and on the page (which counts on by its own clock between answers).
    assert api["data_age_s"] == 42.0
    assert re.fullmatch(r"data 4[2-9]s old", age_text), age_text
    assert status_text == "● live", status_text
    png = base64.b64decode(shot["data"])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    (tmp_path / "wallboard.png").write_bytes(png)
    if os.environ.get(UPDATE_SCREENSHOT_ENV):  # refresh the README's picture on request only
        SCREENSHOT.write_bytes(png)

    by_key = {(t["queue"], t["kpi"]): t for t in tiles}
    assert {q for q, _ in by_key} == set(expected["queues"])
    breached = []
    for name, queue in expected["queues"].items():
        risks = _expected_risks(queue)
        for kpi, (value, status) in _expected_tiles(queue, window).items():
            tile = by_key[(name, kpi)]
            assert tile["risk"] == (risks.get(kpi, "") if status != "breach" else ""), (name, kpi, tile)
            if value is None:
                assert tile["value"] == "" and tile["text"] == "—", (name, kpi, tile)
            else:
                assert math.isclose(float(tile["value"]), float(value), rel_tol=1e-12), (
                    name,
                    kpi,
                    tile,
                    value,
                )
                assert tile["text"] != "—"
            assert tile["status"] == status, (name, kpi, tile, status)
            if status == "breach":
                breached.append((name, kpi))
                assert tile["bg"] == BREACH_RGB, (name, kpi, tile)
                assert name in banner
            elif tile["risk"]:
                assert tile["bg"] == AMBER_RGB and tile["note"].startswith("⚠"), (name, kpi, tile)
            elif status == "ok":
                assert tile["bg"] == OK_RGB, (name, kpi, tile)
    assert breached, "the simulated peak should breach at least one KPI"
    # Agents needed beside agents staffed, as `callpulse kpis` has them; amber, with words, when short.
    for name, queue in expected["queues"].items():
        staffing, tile = queue["staffing"], by_key[(name, "agents_needed")]
        assert staffing["window"] == "15m"
        if staffing["agents_needed"] is None:
            assert (tile["value"], tile["text"], tile["note"]) == ("", "—", staffing["why"]), (name, tile)
        else:
            assert tile["value"] == tile["text"] == str(staffing["agents_needed"]), (name, tile, staffing)
        if staffing["short_by"]:
            assert tile["risk"] == "understaffed" and tile["bg"] == AMBER_RGB, (name, tile)
            assert tile["note"] == f"⚠ {staffing['short_by']} short · {staffing['agents_staffed']} in", (name, tile)
        elif staffing["agents_needed"] is not None:
            assert tile["risk"] == "" and tile["note"] == f"{staffing['agents_staffed']} staffed", (name, tile)
    # Percent and seconds tiles are shown the way supervisors read them.
    sl = by_key[(breached[0][0], "service_level")]
    if sl["value"]:
        assert sl["text"] == f"{float(sl['value']) * 100:.1f}%"

    # Time not ready by reason: per queue, the not-ready agents' state_s summed per reason
    # in the kpis JSON, longest first, each shown as the page's compact time.
    on_page = {r["queue"]: r for r in reasons}
    assert set(on_page) == set(expected["queues"])
    any_reason = False
    for name, queue in expected["queues"].items():
        want = sorted(_not_ready_by_reason(queue).items(), key=lambda rs: (-rs[1], rs[0]))
        chips = on_page[name]["chips"]
        assert on_page[name]["none"] == (not want), (name, on_page[name])
        shown = want if len(want) <= MAX_REASONS else want[: MAX_REASONS - 1]
        assert len(chips) == len(shown) + (len(want) > len(shown)), (name, chips, want)
        for chip, (reason, seconds) in zip(chips, shown, strict=False):
            any_reason = True
            assert chip["reason"] == reason and chip["name"] == (reason or "no reason"), (name, chip, reason)
            assert math.isclose(float(chip["seconds"]), seconds, rel_tol=1e-12), (name, chip, seconds)
            assert chip["time"] == _short(seconds), (name, chip, seconds)
            assert chip["shown"], f"{name}: reason {reason!r} cut off"
        if len(want) > len(shown):
            more = chips[-1]
            rest = want[len(shown) :]
            assert more["more"] == str(len(rest)) and more["name"] == f"+{len(rest)} more", (name, more)
            assert more["time"] == _short(sum(s for _, s in rest)), (name, more, rest)
    assert any_reason, "at the simulated peak some agents should be not ready"

    # Nothing overflows at 1920x1080 with the simulator's four queues, and the not-ready
    # tile does not make a queue's row taller than the other tiles do.
    assert overflow["page"] <= 1920, overflow
    assert not overflow["tiles"], overflow
    assert max(overflow["rows"]) <= 104 + 1, overflow
    # With more reasons than fit (and a long one), still no overflow: the longest first,
    # the rest folded into "+N more", a long reason cut with an ellipsis but its time shown.
    assert crowded["page"] <= 1920 and not crowded["tiles"], crowded
    assert max(crowded["rows"]) <= 104 + 1, crowded
    for tile in crowded_tiles:
        assert [(c["name"], c["time"]) for c in tile["chips"]] == [
            ("break", "1h 02m"),
            ("a-very-long-pause-reason-from-the-pbx", "30m"),
            ("+3 more", "18m"),
        ], tile

    # Lists are there, and caller numbers only masked.
    assert api["agents"] and api["abandoned"]
    for row in api["waiting"] + api["abandoned"]:
        assert row["caller"] is None or "*" in row["caller"]
    assert not re.search(r"\+\d{10,}", body_text), "a caller number is shown in the clear"


def test_the_open_page_follows_new_batches_without_reloading(tmp_path: Path, chromium: DevTools) -> None:
    """A batch stored while the page is open reaches it by itself: the page's watermark and
    every numeric tile become those of `/api/wallboard` after the batch, and the page was
    not reloaded (a marker set before the batch survives). The batch arrives right after a
    refresh, so the refresh cadence skips it: the pipeline's idle tick publishes it."""
    port = free_port()
    config_path = _config_file(tmp_path, port)
    _replay(config_path)
    cfg = load_config(config_path)
    more = list(itertools.islice(simulate(SimConfig()), EVENTS, EVENTS + 2_500))
    url = f"http://{LOOPBACK}:{port}/"
    with Engine.open(cfg, PII_KEY, clock=lambda: CLOCK) as engine:
        services = start_services(engine, cfg)
        try:
            chromium.call("Page.enable")
            chromium.call("Page.navigate", url=url)
            wait_until(
                lambda: chromium.evaluate("document.body && document.body.dataset.loaded === 'true'"),
                30,
                "the wallboard to load its data",
            )
            before = chromium.evaluate("document.body.dataset.watermark")
            chromium.evaluate("window.__callpulseMarker = 'still the same page'")
            services.refresher.refresh_now()  # so the batch below falls inside the cadence
            engine.process(batch(more, "simulator", EVENTS))

            def published() -> bool:
                services.refresher.tick()  # what the worker's idle loop does every second
                doc = json.loads(urllib.request.urlopen(url + "api/wallboard", timeout=10).read())
                return bool(doc["watermark"] != before)

            wait_until(published, 30, "the skipped batch to be published")
            api = json.loads(urllib.request.urlopen(url + "api/wallboard", timeout=10).read())
            wait_until(
                lambda: chromium.evaluate("document.body.dataset.watermark") == api["watermark"],
                30,
                "the open page to show the new watermark",
            )
            tiles = chromium.evaluate(READ_TILES)
            marker = chromium.evaluate("window.__callpulseMarker")
        finally:
            services.close()

    assert marker == "still the same page"
    assert api["watermark"] > before
    want = {(q["queue"], key): tile["value"] for q in api["queues"] for key, tile in q["tiles"].items()}
    got = {(t["queue"], t["kpi"]): t["value"] for t in tiles}
    numeric = [k for k, v in want.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    assert numeric
    for key in numeric:
        assert math.isclose(float(got[key]), float(want[key]), rel_tol=1e-12), (key, got.get(key), want[key])


READ_FRESHNESS = """
(() => {
  const s = document.getElementById('status');
  return {state: document.body.dataset.freshness, text: s.textContent,
          bg: getComputedStyle(s).backgroundColor, cut: s.scrollWidth > s.clientWidth,
          page: document.documentElement.scrollWidth};
})()
"""
AMBER_RGB = "rgb(180, 83, 9)"  # .status-stale in wallboard.css


def test_the_page_says_stale_when_events_stop_and_when_the_feed_stops(tmp_path: Path, chromium: DevTools) -> None:
    """ "live" only while the data is fresh: past ``[wallboard] stale_after`` (60 s here) the
    page says how long there have been no events, in amber, and in red past 4x; fresh data
    makes it live again; a feed that stops answering is STALE too, with how long."""
    port = free_port()
    config_path = _config_file(tmp_path, port)
    with config_path.open("a") as f:
        f.write('\n[wallboard]\nstale_after = "60s"\n')
    _replay(config_path)
    cfg = load_config(config_path)
    url = f"http://{LOOPBACK}:{port}/"
    clock = {"now": CLOCK}
    with Engine.open(cfg, PII_KEY, clock=lambda: clock["now"]) as engine:
        watermark = engine.store.watermark()
        assert watermark is not None
        services = start_services(engine, cfg)
        seen: dict[str, dict[str, Any]] = {}

        def shows(key: str, state: str, age_s: float) -> None:
            clock["now"] = watermark + timedelta(seconds=age_s)
            services.refresher.refresh_now()

            def check() -> bool:
                seen[key] = chromium.evaluate(READ_FRESHNESS)
                return bool(seen[key]["state"] == state)

            wait_until(check, 30, f"the page to be {state} at a data age of {age_s}s")

        try:
            chromium.call("Page.enable")
            chromium.call(
                "Emulation.setDeviceMetricsOverride", width=1280, height=720, deviceScaleFactor=1, mobile=False
            )
            clock["now"] = watermark + timedelta(seconds=10)
            services.refresher.refresh_now()
            chromium.call("Page.navigate", url=url)
            wait_until(
                lambda: chromium.evaluate("document.body && document.body.dataset.loaded === 'true'"),
                30,
                "the wallboard to load its data",
            )
            shows("fresh", "live", 10)
            shows("amber", "stale", 200)
            shows("red", "stale-red", 600)
            shows("again", "live", 5)
        finally:
            services.close()
        wait_until(
            lambda: chromium.evaluate(READ_FRESHNESS)["text"].startswith("⚠ STALE: feed unreachable"),
            30,
            "the page to notice that the feed stopped",
        )
        down = chromium.evaluate(READ_FRESHNESS)

    assert seen["fresh"]["text"] == "● live" and seen["again"]["text"] == "● live"
    # 200 s: "3m 20s" plus the seconds the page has been counting since the feed answered.
    assert re.fullmatch(r"⚠ STALE: no events for 3m 2\ds", seen["amber"]["text"]), seen["amber"]
    assert seen["amber"]["bg"] == AMBER_RGB
    assert re.fullmatch(r"⚠ STALE: no events for 10m 0\ds", seen["red"]["text"]), seen["red"]
    assert seen["red"]["bg"] == BREACH_RGB
    assert down["state"] == "stale" and down["bg"] == AMBER_RGB, down  # down for seconds, not 60 s yet
    assert re.fullmatch(r"⚠ STALE: feed unreachable for \d+s \(.+\)", down["text"]), down
    # Readable at 1280x720: the badge is not cut and the page does not scroll sideways.
    for key, s in [*seen.items(), ("down", down)]:
        assert not s["cut"] and s["page"] <= 1280, (key, s)


# The page redrawn from its own document with a 5-minute-only breach, callers waiting with
# nobody ready, an oldest wait near its target and a grey tile with its reason.
REDRAW_RISKS = """(async () => {
  const data = await (await fetch('/api/wallboard', {cache: 'no-store'})).json();
  const q = data.queues[0];
  q.risks = [{kind: 'no_ready', waiting: 3}, {kind: 'wait_near_target', value: 100, target: 120}];
  q.tiles.agents_ready.value = 0;
  q.tiles.oldest_wait_s.status = 'ok';
  q.tiles.service_level.status = 'none'; q.tiles.service_level.why = 'fewer than 10 calls';
  data.breaches = [{queue: q.queue, kpi: 'abandon_rate', window: '5m', label: 'Abandon rate 5m', value: 0.25,
                    unit: 'ratio', target: 0.05, higher_is_better: false}];
  renderQueues(data); renderBanner(data);
  const tile = (k) => document.querySelector(`.tile[data-queue="${q.queue}"][data-kpi="${k}"]`);
  const read = (k) => ({risk: tile(k).dataset.risk || '', note: tile(k).querySelector('.target').textContent,
                        bg: getComputedStyle(tile(k)).backgroundColor});
  return {queue: q.queue, ready: read('agents_ready'), wait: read('oldest_wait_s'), sl: read('service_level'),
          banner: document.getElementById('banner').textContent, overflow: %s};
})()"""


def test_risk_cues_grey_reasons_and_a_five_minute_breach_on_the_page(tmp_path: Path, chromium: DevTools) -> None:
    with _board_on_screen(tmp_path, chromium):
        # The page redraws every few seconds; read right after drawing, in one evaluation.
        got = chromium.evaluate(REDRAW_RISKS % READ_OVERFLOW.strip())
    assert got["ready"] == {"risk": "no_ready", "note": "⚠ 3 waiting, none ready", "bg": AMBER_RGB}, got
    assert got["wait"] == {"risk": "wait_near_target", "note": "⚠ near target 2m 00s", "bg": AMBER_RGB}, got
    assert got["sl"]["risk"] == "" and got["sl"]["note"] == "fewer than 10 calls", got
    assert got["banner"] == f"⚠ Breach — {got['queue']}: Abandon rate 5m 25.0%", got
    assert not got["overflow"]["tiles"] and got["overflow"]["page"] <= 1920, got


READ_SCREEN = """(() => ({
  rows: Array.from(document.querySelectorAll('.queue')).map(el => el.dataset.queue),
  waiting: Array.from(document.querySelectorAll('#waiting tbody tr')).map(tr => tr.cells[0].textContent),
  abandoned: Array.from(document.querySelectorAll('#abandoned tbody tr')).map(tr => tr.cells[1].textContent),
  agents: Array.from(document.querySelectorAll('#agents tbody tr')).map(tr => tr.cells[3].textContent),
  filter: document.getElementById('filter').hidden ? null : document.getElementById('filter').textContent,
  per: Number(document.getElementById('agents').dataset.per),
  pages: Number(document.getElementById('agents').dataset.pages),
}))()"""


def test_a_queue_filter_in_the_url_shows_one_teams_queues(tmp_path: Path, chromium: DevTools) -> None:
    with _board_on_screen(tmp_path, chromium, "?queues=billing,sales,nosuch") as url:
        api = json.loads(urllib.request.urlopen(url + "api/wallboard", timeout=10).read())
        screen = chromium.evaluate(READ_SCREEN)
    team = {"billing", "sales"}
    assert {q["queue"] for q in api["queues"]} > team  # the feed has other queues too
    assert screen["rows"] == ["billing", "sales"]
    assert screen["filter"] == "queues: billing, sales (no queue nosuch)"
    assert screen["waiting"] and set(screen["waiting"]) <= team, screen
    assert set(screen["abandoned"]) <= team, screen
    want_agents = [a for a in api["agents"] if team & set(a["queues"])]
    assert screen["agents"] and len(screen["agents"]) == min(len(want_agents), screen["per"]), screen
    assert screen["pages"] == math.ceil(len(want_agents) / screen["per"]), screen
    assert all(team & set(a.split(", ")) for a in screen["agents"]), screen


# What a screen shows: text cut or spilling anywhere, rows cut by their list, the page
# scrolling, and the agents list's paging.
READ_LAYOUT = """(() => {
  const cut = (el) => el.scrollWidth > el.clientWidth + 1 || el.scrollHeight > el.clientHeight + 1;
  const inside = (el, box) => el.getBoundingClientRect().bottom <= box.getBoundingClientRect().bottom + 0.5;
  const rows = Array.from(document.querySelectorAll('.list tbody tr'));
  const agents = document.getElementById('agents');
  return {
    width: document.documentElement.scrollWidth, height: document.documentElement.scrollHeight,
    cut: Array.from(document.querySelectorAll('.tile, .queue-name, .list, #meta, header, .tile .label, td'))
      .filter(cut).map(el => el.id || el.className || el.tagName),
    rowsCut: rows.filter(tr => !inside(tr, tr.closest('.list'))).length,
    rowsShown: rows.length,
    valuePx: parseFloat(getComputedStyle(document.querySelector('.tile .value')).fontSize),
    agents: agents.querySelectorAll('tbody tr').length,
    per: Number(agents.dataset.per), page: Number(agents.dataset.page), pages: Number(agents.dataset.pages),
    count: document.getElementById('agents-count').textContent,
  };
})()"""


@pytest.mark.parametrize(("width", "height"), [(1280, 720), (1920, 1080), (3840, 2160)])
def test_the_board_fits_every_screen_from_720p_to_4k(
    width: int, height: int, tmp_path: Path, chromium: DevTools
) -> None:
    """No text cut or overlapping, no row cut in half, no scrolling; type scales with the
    screen; agents that do not fit are paged (page k/N in the header) and every page is shown
    in turn."""
    with _board_on_screen(tmp_path, chromium, size=(width, height)) as url:
        api = json.loads(urllib.request.urlopen(url + "api/wallboard", timeout=10).read())
        first = chromium.evaluate(READ_LAYOUT)
        shot = chromium.call("Page.captureScreenshot", format="png")
        (tmp_path / f"wallboard-{width}x{height}.png").write_bytes(base64.b64decode(shot["data"]))
        pages = [first["page"]]
        if first["pages"] > 1:
            wait_until(
                lambda: pages.append(chromium.evaluate(READ_LAYOUT)["page"]) or pages[-1] == 2,
                30,
                "the agents list to turn to its second page",
            )
    assert first["width"] <= width and first["height"] <= height, first
    assert not first["cut"], first
    assert first["rowsCut"] == 0 and first["rowsShown"] > 0, first
    assert math.isclose(first["valuePx"], 40 * width / 1920, rel_tol=0.02), first  # 40px at 1920 wide
    n = len(api["agents"])
    assert first["pages"] == math.ceil(n / first["per"]) and first["agents"] == min(n, first["per"]), first
    if first["pages"] > 1:
        assert first["page"] == 1 and f"page 1/{first['pages']}" in first["count"], first
        assert pages[-1] == 2
