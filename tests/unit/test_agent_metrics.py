"""Per-agent metrics and the supervisor's not-ready time, from a real (in-memory) store
through the exporter, checked against numbers worked out by hand.

Scenario (UTC, windows 5m / 15m / 1h ending at the watermark 10:00:00, the time of
the newest event; queues billing, sales and idle, the last two known from config):

  agent  queues          states
  a1     billing         login 08:59, ready 09:00, busy 09:30:05, wrap 09:33, ready 09:33:25,
                         busy 09:50, wrap 09:54, ready 09:55, not_ready(break) 09:56,
                         ready 09:58, busy 09:59 (still at 10:00)
  a2     billing         login 08:59, ready 09:00, not_ready(lunch) 09:40 (still)
  a3     billing, sales  login 07:59, ready 08:00, not_ready(break) 09:57:30 (still)
  a4     sales           login 09:10, not_ready(no reason) 09:10, ready 09:20, logout 09:30

  call  offered    agent  talk hold wrap  handle
  c0    08:50:00   a1     280    0   20    300   (before every window)
  c3    09:30:00   a1     150    0   25    175   (1h only)
  c1    09:49:50   a1     200   40   60    300   (15m, 1h)
  c2    09:58:50   a1      50   10    0     60   (5m, 15m, 1h; ended at 10:00:00)
  c4    09:59:50   a3     answered, not ended: not handled

  QA    a1: 70 at 03-01 10:00:00 (exactly 24 h before: in), 80 at 09:10, 90 at 09:59,
            40 at 03-01 09:59:59 (out); a2: 55 at 09:00

State time per window (seconds), worked out segment by segment:

  a1  1h: ready 1805 + 995 + 60 + 60 = 2920, busy 175 + 240 + 60 = 475, wrap 25 + 60 = 85,
          break 120 (sum 3600); occupancy 560 / 3480
      15m: ready 300 + 60 + 60 = 420, busy 240 + 60 = 300, wrap 60, break 120; occupancy 360 / 780
      5m: ready 60 + 60 = 120, busy 60, wrap 0, break 120; occupancy 60 / 180
  a2  1h: ready 2400, lunch 1200, occupancy 0; 15m: lunch 900; 5m: lunch 300 (occupancy undefined)
  a3  1h: ready 3450, break 150; 15m: ready 750, break 150; 5m: ready 150, break 150; occupancy 0
  a4  1h: not ready (no reason) 600, ready 600, occupancy 0; nothing in 15m / 5m

Not ready now (time in state at 10:00): a2 lunch 1200 s (billing), a3 break 150 s
(billing and sales).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from metrics.export import names
from metrics.export.exporter import Exporter
from metrics.kpi.snapshot import take_snapshot
from pipeline.core.config import Config, ExporterSettings, QueueSettings
from pipeline.core.engine import Engine
from tests.helpers import engine as new_engine
from tests.helpers import feed
from tests.support.scrape import samples


def at(hms: str, day: int = 2) -> str:
    return f"2026-03-0{day}T{hms}Z"


def agent(agent_id: str, state: str, hms: str, **extra: Any) -> dict[str, Any]:
    return {"type": "agent", "agent_id": agent_id, "state": state, "at": at(hms), **extra}


def call(event: str, cid: str, hms: str, queue: str = "billing", **extra: Any) -> dict[str, Any]:
    return {"type": "call", "event": event, "call_id": cid, "queue": queue, "at": at(hms), **extra}


def handled_call(cid: str, offered: str, answered: str, ended: str, agent_id: str, talk: int, hold: int, wrap: int):
    return [
        call("offered", cid, offered),
        call("answered", cid, answered, agent_id=agent_id),
        call("ended", cid, ended, agent_id=agent_id, talk_s=talk, hold_s=hold, wrap_s=wrap),
    ]


def qa(cid: str, agent_id: str, score: float, when: str) -> dict[str, Any]:
    return {"type": "qa", "call_id": cid, "agent_id": agent_id, "score": score, "at": when}


SCENARIO: list[dict[str, Any]] = [
    agent("a1", "login", "08:59:00", queues=["billing"]),
    agent("a1", "ready", "09:00:00"),
    agent("a1", "busy", "09:30:05"),
    agent("a1", "wrap", "09:33:00"),
    agent("a1", "ready", "09:33:25"),
    agent("a1", "busy", "09:50:00"),
    agent("a1", "wrap", "09:54:00"),
    agent("a1", "ready", "09:55:00"),
    agent("a1", "not_ready", "09:56:00", reason="break"),
    agent("a1", "ready", "09:58:00"),
    agent("a1", "busy", "09:59:00"),
    agent("a2", "login", "08:59:00", queues=["billing"]),
    agent("a2", "ready", "09:00:00"),
    agent("a2", "not_ready", "09:40:00", reason="lunch"),
    agent("a3", "login", "07:59:00", queues=["billing", "sales"]),
    agent("a3", "ready", "08:00:00"),
    agent("a3", "not_ready", "09:57:30", reason="break"),
    agent("a4", "login", "09:10:00", queues=["sales"]),
    agent("a4", "not_ready", "09:10:00"),
    agent("a4", "ready", "09:20:00"),
    agent("a4", "logout", "09:30:00"),
    *handled_call("c0", "08:50:00", "08:50:10", "08:55:00", "a1", 280, 0, 20),
    *handled_call("c3", "09:30:00", "09:30:05", "09:33:00", "a1", 150, 0, 25),
    *handled_call("c1", "09:49:50", "09:50:00", "09:54:00", "a1", 200, 40, 60),
    *handled_call("c2", "09:58:50", "09:59:00", "10:00:00", "a1", 50, 10, 0),
    call("offered", "c4", "09:59:50"),
    call("answered", "c4", "09:59:55", agent_id="a3"),
    qa("c-b", "a1", 70, at("10:00:00", day=1)),
    qa("c-old", "a1", 40, at("09:59:59", day=1)),
    qa("c0", "a1", 80, at("09:10:00")),
    qa("c1", "a1", 90, at("09:59:00")),
    qa("c3", "a2", 55, at("09:00:00")),
]


def scrape(per_agent: bool, scenario: list[dict[str, Any]] = SCENARIO) -> str:
    cfg = Config(
        queues={"sales": QueueSettings(), "idle": QueueSettings()}, exporter=ExporterSettings(per_agent=per_agent)
    )
    eng: Engine = new_engine(config=cfg)
    try:
        feed(eng, scenario)
        con = eng.store.con
        snap = take_snapshot(con, cfg.windows)
        assert snap.watermark is not None and snap.watermark.isoformat() == "2026-03-02T10:00:00+00:00"
        exporter = Exporter(con, cfg, eng.totals, snapshot=lambda: snap, clock=lambda: snap.watermark)
        exporter.refresh(con)
        return exporter.metrics_text().decode()
    finally:
        eng.close()


@pytest.fixture(scope="module")
def text() -> Iterator[str]:
    yield scrape(per_agent=True)


def by(text: str, metric: names.MetricName, *keys: str) -> dict[tuple[str, ...], float]:
    """Samples keyed by the given label values, in order."""
    return {tuple(dict(k)[key] for key in keys): v for k, v in samples(text, metric.name).items()}


def test_handled_calls_per_agent_and_window(text: str) -> None:
    assert by(text, names.AGENT_HANDLED, "agent", "window") == {
        ("a1", "5m"): 1,  # c2
        ("a1", "15m"): 2,  # c1, c2
        ("a1", "1h"): 3,  # c3, c1, c2 (c0 offered before the hour)
        ("a2", "5m"): 0,
        ("a2", "15m"): 0,
        ("a2", "1h"): 0,
        ("a3", "5m"): 0,  # c4 answered but not ended: not handled
        ("a3", "15m"): 0,
        ("a3", "1h"): 0,
        ("a4", "1h"): 0,  # logged in during the hour only
    }


def test_aht_per_agent_and_window(text: str) -> None:
    got = by(text, names.AGENT_AHT, "agent", "window")
    assert got == pytest.approx(
        {
            ("a1", "5m"): 60.0,
            ("a1", "15m"): (300 + 60) / 2,
            ("a1", "1h"): (175 + 300 + 60) / 3,
        }
    )  # no handled call: no sample (never 0)


def test_occupancy_per_agent_and_window(text: str) -> None:
    got = by(text, names.AGENT_OCCUPANCY, "agent", "window")
    assert got == pytest.approx(
        {
            ("a1", "5m"): 60 / 180,
            ("a1", "15m"): 360 / 780,
            ("a1", "1h"): 560 / 3480,
            ("a2", "1h"): 0.0,  # ready, never busy; 15m / 5m: no ready/busy/wrap time, undefined
            ("a3", "5m"): 0.0,
            ("a3", "15m"): 0.0,
            ("a3", "1h"): 0.0,
            ("a4", "1h"): 0.0,
        }
    )


def test_not_ready_seconds_per_agent_reason_and_window(text: str) -> None:
    got = by(text, names.AGENT_NOT_READY_SECONDS, "agent", "reason", "window")
    assert got == pytest.approx(
        {
            ("a1", "break", "5m"): 120,
            ("a1", "break", "15m"): 120,
            ("a1", "break", "1h"): 120,
            ("a2", "lunch", "5m"): 300,
            ("a2", "lunch", "15m"): 900,
            ("a2", "lunch", "1h"): 1200,
            ("a3", "break", "5m"): 150,
            ("a3", "break", "15m"): 150,
            ("a3", "break", "1h"): 150,
            ("a4", "", "1h"): 600,
        }
    )


def test_qa_score_over_the_last_24_hours(text: str) -> None:
    assert names.QA_WINDOW_S == 24 * 3600
    assert by(text, names.AGENT_QA_SCORE, "agent") == pytest.approx({("a1",): (70 + 80 + 90) / 3, ("a2",): 55.0})
    assert by(text, names.AGENT_QA_EVALUATIONS, "agent") == {("a1",): 3, ("a2",): 1}


def test_agent_state_now(text: str) -> None:
    assert by(text, names.AGENT_STATE, "agent", "state", "reason") == {
        ("a1", "busy", ""): 1,
        ("a2", "not_ready", "lunch"): 1,
        ("a3", "not_ready", "break"): 1,
    }


def test_not_ready_seconds_per_queue_now(text: str) -> None:
    assert by(text, names.AGENTS_NOT_READY_SECONDS, "queue", "reason") == {
        ("billing", "break"): 150,  # a3
        ("billing", "lunch"): 1200,  # a2
        ("sales", "break"): 150,  # a3 serves both queues; a4 logged out
        ("idle", ""): 0,  # nobody not ready: one zero sample
    }
    agents = by(text, names.AGENTS, "queue", "state", "reason")
    assert agents[("billing", "not_ready", "lunch")] == agents[("billing", "not_ready", "break")] == 1


def test_without_per_agent_only_the_queue_series() -> None:
    text = scrape(per_agent=False)
    assert "callpulse_agent_" not in text
    assert by(text, names.AGENTS_NOT_READY_SECONDS, "queue", "reason")[("billing", "lunch")] == 1200


# a5 serves billing and has been ready since long before every window, with no event since.
IDLE_A5 = [agent("a5", "login", "07:00:00", queues=["billing"]), agent("a5", "ready", "07:00:30")]


@pytest.mark.parametrize(
    "scenario",
    [
        pytest.param(SCENARIO + IDLE_A5, id="an agent first seen in the window: its history read whole"),
        pytest.param(
            [r for r in SCENARIO if r.get("agent_id") != "a4" or r["type"] != "agent"] + IDLE_A5,
            id="every agent seen before the window: read from an hour before it",
        ),
    ],
)
def test_queue_occupancy_per_window(scenario: list[dict[str, Any]]) -> None:
    """Queue occupancy: (busy + wrap) / (busy + wrap + ready) of the queue's agents, from the
    per-agent times in the module docstring plus a5 (ready all along: 3600 / 900 / 300 s).
    billing (a1, a2, a3, a5): 1h 560 / (560 + 2920 + 2400 + 3450 + 3600); 15m 360 / (360 +
    420 + 0 + 750 + 900); 5m 60 / (60 + 120 + 150 + 300). sales (a3, and a4 when there):
    never busy, 0. a3's queues come from its login at 07:59, before any search range."""
    got = samples(scrape(per_agent=False, scenario=scenario), names.OCCUPANCY.name)
    assert {dict(labels)["window"]: v for labels, v in got.items() if dict(labels)["queue"] == "billing"} == {
        "1h": pytest.approx(560 / 12930),
        "15m": pytest.approx(360 / 2430),
        "5m": pytest.approx(60 / 630),
    }
    assert {dict(labels)["window"]: v for labels, v in got.items() if dict(labels)["queue"] == "sales"} == {
        "1h": 0,
        "15m": 0,
        "5m": 0,
    }


def test_metrics_text_is_rendered_once_per_publication_and_second_and_current_to_the_second() -> None:
    """/metrics keeps its rendering while neither the published state, the ownership nor the
    clock's second changed (pollers many times a second cost one); what it serves is still
    what rendering the latest state gives: the lag once the second turns, the counters once
    published, the queues of a new ownership at once."""
    from datetime import timedelta

    from prometheus_client import generate_latest

    from pipeline.core.ownership import EVERYTHING, NOTHING

    cfg = Config(queues={"sales": QueueSettings()})
    eng: Engine = new_engine(config=cfg)
    try:
        feed(eng, SCENARIO)
        con = eng.store.con
        snap = take_snapshot(con, cfg.windows)
        assert snap.watermark is not None
        now = {"t": snap.watermark + timedelta(milliseconds=100)}
        owned = {"now": EVERYTHING}
        exporter = Exporter(
            con, cfg, eng.totals, snapshot=lambda: snap, clock=lambda: now["t"], ownership=lambda: owned["now"]
        )
        exporter.refresh(con)
        first = exporter.metrics_text()
        assert first == generate_latest(exporter.registry)
        now["t"] += timedelta(milliseconds=500)
        assert exporter.metrics_text() is first  # the same state in the same second
        now["t"] += timedelta(seconds=1)
        later = exporter.metrics_text().decode()
        assert samples(later, names.WATERMARK_LAG.name) == {(): 1.6}
        offered = samples(later, names.CALLS_OFFERED_TOTAL.name)[(("queue", "billing"),)]
        feed(eng, [call("offered", "c9", "10:00:00")])
        exporter.refresh(con)  # published: the next scrape counts the call, in the same second
        after = exporter.metrics_text()
        assert after == generate_latest(exporter.registry)
        assert samples(after.decode(), names.CALLS_OFFERED_TOTAL.name)[(("queue", "billing"),)] == offered + 1
        owned["now"] = NOTHING  # a rebalance took every queue away, in the same second
        assert samples(exporter.metrics_text().decode(), names.CALLS_OFFERED_TOTAL.name) == {}
    finally:
        eng.close()
