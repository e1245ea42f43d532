"""Staffing now, end to end: a simulated understaffed hour shows the needed-vs-staffed gap
on the wallboard (headless Chromium) and fires "understaffed by N" through a real
Prometheus and Alertmanager, which resolves once the agents are back.

The day: billing (2400 calls, 40 agents of its own) and a generously staffed sales. From
13:00 to 14:00 every billing agent on shift leaves for a meeting, and here they log out
for it (the simulator's meeting becomes a logout, and the agent's next state a login with
the queues it had): staffed counts logged-in agents, so billing is left with the sales
agents who also take its calls. The morning is fed at once, 12:50-13:50 at 150x real time
(test_alerting_e2e's feeder), then the pipeline stands at 13:50 while the page and the
alert are read and compared with numbers computed here from the records themselves (the
window's calls, handle time, waits, abandons and the agents logged in), fed to the core's
verified Erlang functions; then 13:50-14:30 is fed and the alert must resolve.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from devtools.procs import LOOPBACK, free_port, wait_until
from metrics.export import rules
from metrics.export.rules import AlertSettings, RuleSettings
from metrics.kpi.staffing import agents_needed_erlang_a, agents_needed_erlang_c
from pipeline.core.config import Config, ExporterSettings
from pipeline.ingest.sources.simulator import QueueSpec, SimConfig, Understaffing, simulate
from tests.integration.test_wallboard_chromium import DevTools, chromium  # noqa: F401 - the fixture
from tests.support.alerting import alerting_pipeline, alerts_in, record_ts
from tests.support.prometheus import AlertmanagerServer, PrometheusServer

pytestmark = [pytest.mark.prometheus, pytest.mark.chromium]

QUEUE = "billing"
SIM = SimConfig(
    seed=1,
    day=date(2026, 3, 2),
    queues=(
        QueueSpec(QUEUE, 2400, 40, mean_talk_s=240, mean_wrap_s=30, patience_s=90),
        QueueSpec("sales", 1400, 70, mean_talk_s=270, mean_wrap_s=40, patience_s=60),
    ),
    understaffing=(
        Understaffing(QUEUE, datetime.min.time().replace(hour=13), datetime.min.time().replace(hour=14), 1.0),
    ),
)
TZ = ZoneInfo(SIM.tz)
PACED_FROM = datetime(2026, 3, 2, 12, 50, tzinfo=TZ)
STAND_AT = datetime(2026, 3, 2, 13, 50, tzinfo=TZ)  # mid-hour: billing short, watermark still
PACED_TO = datetime(2026, 3, 2, 14, 30, tzinfo=TZ)
SETTINGS = AlertSettings(window="15m", understaffed=RuleSettings("5s", "warning"))
WINDOW_S = 900  # the staffing window: 15m, the default interval's length
SL_TARGET, SL_THRESHOLD_S, SHORT_ABANDON_S = 0.8, 15.0, 5.0  # the defaults


def meetings_as_logouts(records: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """The simulated day with every meeting taken logged out: the not_ready (meeting)
    record becomes a logout, the agent's next record is preceded by a login with the
    queues of its last login (or dropped if it is a logout itself)."""
    queues: dict[str, list[str]] = {}
    away: set[str] = set()
    for r in records:
        if r["type"] == "agent":
            agent = r["agent_id"]
            if r["state"] == "login":
                queues[agent] = r["queues"]
                away.discard(agent)
            elif r["state"] == "not_ready" and r.get("reason") == "meeting":
                away.add(agent)
                yield {"type": "agent", "agent_id": agent, "state": "logout", "at": r["at"]}
                continue
            elif agent in away:
                away.discard(agent)
                if r["state"] == "logout":
                    continue
                yield {"type": "agent", "agent_id": agent, "state": "login", "at": r["at"], "queues": queues[agent]}
        yield r


@dataclass(frozen=True)
class Expected:
    needed: int
    staffed: int
    ready: int


def expected_now(records: list[dict[str, Any]], queue: str) -> Expected:
    """Agents needed, staffed and ready for ``queue`` at the newest record, computed from
    the records alone: the calls offered in the 15 minutes up to it, their handle time and
    waits, and each agent's last state and queues."""
    wm = max(record_ts(r) for r in records)
    calls: dict[str, dict[str, Any]] = {}
    for r in records:
        if r["type"] == "call" and r["queue"] == queue:
            calls.setdefault(r["call_id"], {})[r["event"]] = r
    offered = short = abandons = handled = 0
    handle_s = wait_s = 0.0
    for c in calls.values():
        start = record_ts(c["offered"]) if "offered" in c else None
        if start is None or not wm - WINDOW_S <= start <= wm:
            continue
        offered += 1
        end = next((record_ts(c[e]) for e in ("answered", "abandoned", "exited") if e in c), wm)
        if "abandoned" in c and "answered" not in c and end - start < SHORT_ABANDON_S:
            short += 1  # left before the short-abandon limit: in neither the rate nor the patience
            continue
        wait_s += end - start
        abandons += "abandoned" in c and "answered" not in c
        if "answered" in c and "ended" in c:
            e = c["ended"]
            handled += 1
            handle_s += e["talk_s"] + e.get("hold_s", 0) + e.get("wrap_s", 0)
    last: dict[str, tuple[float, str]] = {}
    agent_queues: dict[str, list[str]] = {}
    for r in records:
        if r["type"] == "agent":
            key = (record_ts(r), r["state"])  # of two states at one instant, the later in (time, state) order lasts
            if r["agent_id"] not in last or key >= last[r["agent_id"]]:
                last[r["agent_id"]] = key
            if "queues" in r:
                agent_queues[r["agent_id"]] = r["queues"]
    on = [a for a, (_, state) in last.items() if state != "logout" and queue in agent_queues.get(a, [])]
    ready = sum(1 for a in on if last[a][1] == "ready")
    assert offered >= 10 and handled, (offered, handled)
    calls_seen, aht = offered - short, handle_s / handled
    common = {"interval_s": WINDOW_S, "aht_s": aht, "target_s": SL_THRESHOLD_S, "sl_target": SL_TARGET}
    if abandons:
        found = agents_needed_erlang_a(calls_seen, patience_s=wait_s / abandons, **common)
    else:
        found = agents_needed_erlang_c(calls_seen, **common)
    assert found is not None
    return Expected(found.agents, len(on), ready)


def _understaffed(payload: dict[str, Any], status: str) -> set[str]:
    return alerts_in(payload, rules.UNDERSTAFFED, status)


READ_TILE = """(() => {
  const t = document.querySelector('.tile[data-queue="%s"][data-kpi="agents_needed"]');
  return t && {watermark: document.body.dataset.watermark, value: t.dataset.value, risk: t.dataset.risk || '',
    text: t.querySelector('.value').textContent, note: t.querySelector('.target').textContent,
    title: t.title, bg: getComputedStyle(t).backgroundColor};
})()"""
AMBER_RGB = "rgb(180, 83, 9)"  # the risk cue's colour in wallboard.css


def test_an_understaffed_hour_shows_the_gap_on_the_page_and_fires_understaffed_by_n(
    tmp_path: Path,
    chromium: DevTools,  # noqa: F811 - the fixture imported above
    start_prometheus: Callable[..., PrometheusServer],
    start_alertmanager: Callable[[str], AlertmanagerServer],
) -> None:
    config = Config(db=tmp_path / "callpulse.duckdb", exporter=ExporterSettings(port=free_port()))
    records = list(meetings_as_logouts(list(simulate(SIM))))
    split = next(i for i, r in enumerate(records) if record_ts(r) >= PACED_FROM.timestamp())
    stand = next(i for i, r in enumerate(records) if record_ts(r) >= STAND_AT.timestamp())
    end = next(i for i, r in enumerate(records) if record_ts(r) >= PACED_TO.timestamp())
    with alerting_pipeline(tmp_path, config, SETTINGS, records[:split], start_prometheus, start_alertmanager) as run:
        prom, receiver, refresher = run.prom, run.receiver, run.services.refresher
        prom.wait_for_series("callpulse_agents_needed", lambda rows: len(rows) == 2, timeout=20)
        assert prom.query(f'ALERTS{{alertname="{rules.UNDERSTAFFED}"}}') == []  # fully staffed at 12:50

        url = f"http://{LOOPBACK}:{config.exporter.port}/"
        chromium.call("Page.enable")
        chromium.call("Emulation.setDeviceMetricsOverride", width=1920, height=1080, deviceScaleFactor=1, mobile=False)
        chromium.call("Page.navigate", url=url)
        wait_until(lambda: chromium.evaluate(READ_TILE % QUEUE), 30, "the wallboard to show billing")
        before = chromium.evaluate(READ_TILE % QUEUE)

        feeder = run.pace(records[split:stand], split)
        firing = receiver.wait_for(lambda p: QUEUE in _understaffed(p, "firing"), timeout=60)
        feeder.join(timeout=60)
        assert not feeder.is_alive() and feeder.error is None

        # The pipeline stands at 13:50: the page and Prometheus show what the records say.
        want = expected_now(records[:stand], QUEUE)
        assert want.needed > want.staffed, want  # the scenario is understaffed at this moment
        short = want.needed - want.staffed
        watermark = datetime.fromtimestamp(max(record_ts(r) for r in records[:stand]), TZ)

        def page_shows(moment: datetime) -> bool:
            # Publish the lists now (the feeder stopped: no batch will) until the page,
            # which polls the feed, shows this moment.
            refresher.refresh_now()
            return datetime.fromisoformat(chromium.evaluate(READ_TILE % QUEUE)["watermark"]) == moment

        wait_until(lambda: page_shows(watermark), 60, "the page to show the 13:50 snapshot", interval=1.0)
        tile = chromium.evaluate(READ_TILE % QUEUE)
        prom.wait_for_series(f'callpulse_agents_needed{{queue="{QUEUE}"}} == {want.needed}', timeout=60)
        summary = f"Queue {QUEUE} is understaffed by {short}"
        wait_until(
            lambda: any(
                a["labels"].get("alertname") == rules.UNDERSTAFFED and a["annotations"]["summary"] == summary
                for a in prom.alerts()
            ),
            60,
            f"the alert to say {summary!r}",
        )

        feeder = run.pace(records[stand:end], stand)
        resolved = receiver.wait_for(lambda p: QUEUE in _understaffed(p, "resolved"), timeout=120)
        feeder.join(timeout=120)
        assert feeder.error is None
        final = datetime.fromtimestamp(max(record_ts(r) for r in records[:end]), TZ)
        wait_until(lambda: page_shows(final), 60, "the page to show the 14:30 snapshot", interval=1.0)
        after = chromium.evaluate(READ_TILE % QUEUE)
        delivered = set().union(*(_understaffed(p, "firing") for p in receiver.payloads))
    run.engine.close()

    # On the page: needed N, the amber cue with words, N − M short and M logged in.
    assert before["risk"] == "" and before["note"].endswith(" staffed"), before
    assert (tile["value"], tile["text"], tile["risk"], tile["bg"]) == (
        str(want.needed),
        str(want.needed),
        "understaffed",
        AMBER_RGB,
    ), (tile, want)
    assert tile["note"] == f"⚠ {short} short · {want.staffed} in", (tile, want)
    assert tile["title"] == f"needed {want.needed} / staffed {want.staffed} / ready {want.ready}", (tile, want)
    assert after["note"].endswith(" staffed") and after["bg"] != AMBER_RGB, after
    # Through Alertmanager: billing only, fired and resolved.
    assert firing["status"] == "firing" and resolved["status"] == "resolved"
    assert delivered == {QUEUE}
    print(f"\nat 13:50 billing needs {want.needed}, {want.staffed} logged in ({want.ready} ready): short by {short}")


def test_meetings_as_logouts_keeps_each_agents_queues() -> None:
    day = [
        {"type": "agent", "agent_id": "a", "state": "login", "at": "t0", "queues": ["billing", "sales"]},
        {"type": "agent", "agent_id": "a", "state": "not_ready", "reason": "meeting", "at": "t1"},
        {"type": "agent", "agent_id": "a", "state": "ready", "at": "t2"},
        {"type": "agent", "agent_id": "b", "state": "not_ready", "reason": "meeting", "at": "t1"},
        {"type": "agent", "agent_id": "b", "state": "logout", "at": "t3"},
    ]
    assert [(r["agent_id"], r["state"], r["at"], r.get("queues")) for r in meetings_as_logouts(day)] == [
        ("a", "login", "t0", ["billing", "sales"]),
        ("a", "logout", "t1", None),
        ("a", "login", "t2", ["billing", "sales"]),
        ("a", "ready", "t2", None),
        ("b", "logout", "t1", None),
    ]
