"""The real exporter: engine + store + runtime services serving /metrics on a free port,
read over HTTP, checked by promtool and scraped by a real Prometheus."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devtools.procs import free_port
from metrics.export import names
from metrics.export.exporter import LIVE_JOB
from metrics.kpi.breaches import BreachDetector
from pipeline.cli import services as services_module
from pipeline.cli.services import GIL_SWITCH_S, start_services
from pipeline.core.config import Config, ExporterSettings, QueueSettings
from pipeline.core.engine import Engine
from pipeline.ingest.sources.simulator import SimConfig, simulate
from pipeline.serve.host import Services
from tests import helpers
from tests.support.prometheus import PrometheusServer, Tool, scrape_config
from tests.support.scrape import families, fetch, series, value

ODD = 'we"ird\\queue\nname'
T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


def _at(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat()


def odd_queue_calls(start: int, n: int) -> list[dict[str, Any]]:
    """``n`` calls on the odd-named queue, one a minute: answered in 10 s (every third
    after 40 s), each fifth abandoned after 30 s."""
    out: list[dict[str, Any]] = []
    for i in range(start, start + n):
        t = i * 60.0
        cid = f"odd-{i}"
        out.append({"type": "call", "event": "offered", "call_id": cid, "queue": ODD, "at": _at(t)})
        if i % 5 == 4:
            out.append(
                {
                    "type": "call",
                    "event": "abandoned",
                    "call_id": cid,
                    "queue": ODD,
                    "at": _at(t + 30),
                }
            )
            continue
        wait = 40 if i % 3 == 2 else 10
        out.append(
            {
                "type": "call",
                "event": "answered",
                "call_id": cid,
                "queue": ODD,
                "agent_id": "odd-agent",
                "at": _at(t + wait),
            }
        )
        out.append(
            {
                "type": "call",
                "event": "ended",
                "call_id": cid,
                "queue": ODD,
                "agent_id": "odd-agent",
                "at": _at(t + wait + 20),
                "talk_s": 20,
            }
        )
    return out


def config(**exporter: Any) -> Config:
    return Config(
        queues={"idle": QueueSettings(sl_threshold_s=20.0)},
        exporter=ExporterSettings(port=free_port(), **exporter),
    )


@pytest.fixture
def served() -> Iterator[tuple[Engine, Services]]:
    cfg = config()
    engine = helpers.engine(config=cfg)
    services = start_services(engine, cfg, serve=True, refresh_every_s=0)
    try:
        yield engine, services
    finally:
        services.close()
        engine.close()


def get(services: Services) -> tuple[str, str]:
    assert services.server is not None
    return fetch(services.server.url + "/metrics")


SIM_DAY = list(simulate(SimConfig(seed=5)))[:6000]


def test_services_hand_the_gil_over_sooner_than_pythons_default() -> None:
    before = sys.getswitchinterval()
    sys.setswitchinterval(0.005)  # Python's default, whatever an earlier test left
    cfg = config()
    engine = helpers.engine(config=cfg)
    try:
        services = start_services(engine, cfg, serve=False, refresh_every_s=0)
        services.close()
        assert sys.getswitchinterval() == pytest.approx(GIL_SWITCH_S)
        assert GIL_SWITCH_S < 0.005
    finally:
        engine.close()
        sys.setswitchinterval(before)


def test_metrics_endpoint_serves_every_metric_from_the_store(
    served: tuple[Engine, Services],
) -> None:
    engine, services = served
    assert services.server is not None and services.server.url.startswith("http://127.0.0.1:")
    engine.process(helpers.batch(SIM_DAY[:3000], "simulator"))
    engine.process(helpers.batch(odd_queue_calls(0, 20), "file:/data/odd.jsonl"))
    text, content_type = get(services)
    assert content_type.startswith("text/plain; version=0.0.4")
    exported = families(text)
    assert exported == {m.name.removesuffix("_total") for m in names.ALL}

    snap = services.published.get("snapshot")
    q = snap.queues[ODD]
    assert value(text, names.SERVICE_LEVEL.name, queue=ODD, window="1h") == pytest.approx(q.windows["1h"].service_level)
    assert value(text, names.CALLS_OFFERED_TOTAL.name, queue=ODD) == 20
    assert value(text, names.CALLS_ABANDONED_TOTAL.name, queue=ODD) == 4
    answered_in_sl = sum(1 for i in range(20) if i % 5 != 4 and i % 3 != 2)
    assert value(text, names.CALLS_ANSWERED_IN_SL_TOTAL.name, queue=ODD) == answered_in_sl
    assert value(text, names.WAIT.name + "_bucket", queue=ODD, le="15.0") == answered_in_sl
    assert value(text, names.WAIT.name + "_count", queue=ODD) == 16
    # a queue known only from config: zeros, no ratios, and its threshold is a bucket
    assert value(text, names.CALLS_OFFERED_TOTAL.name, queue="idle") == 0
    assert value(text, names.WINDOW_OFFERED.name, queue="idle", window="15m") == 0
    assert value(text, names.SERVICE_LEVEL.name, queue="idle", window="15m") is None
    assert value(text, names.WAIT.name + "_bucket", queue="billing", le="20.0") is not None
    # pipeline health, bounded labels
    assert value(text, names.EVENTS_INGESTED_TOTAL.name, source="simulator") == 3000
    assert value(text, names.EVENTS_INGESTED_TOTAL.name, source="file") == len(odd_queue_calls(0, 20))
    wm = snap.watermark
    assert value(text, names.LAST_EVENT.name) == wm.timestamp()
    assert value(text, names.WATERMARK_LAG.name) == (helpers.CLOCK - wm).total_seconds()
    assert value(text, names.BATCH_DURATION.name + "_count") == 2
    assert 'queue="we\\"ird\\\\queue\\nname"' in text


def test_counters_only_grow_and_count_duplicates_and_dead_letters(
    served: tuple[Engine, Services],
) -> None:
    engine, services = served
    engine.process(helpers.batch(SIM_DAY[:2000], "simulator"))
    before = series(get(services)[0])
    engine.process(helpers.batch(SIM_DAY[2000:6000], "simulator"))
    engine.process(helpers.batch(SIM_DAY[:500], "simulator"))  # all duplicates
    engine.process(helpers.batch([{"type": "call", "event": "offered", "call_id": "x"}], "file:/a"))
    after_text = get(services)[0]
    after = series(after_text)
    counters = {m.name for m in names.ALL if m.kind == "counter"}
    histograms = {m.name for m in names.ALL if m.kind == "histogram"}
    grew = 0
    for key, old in before.items():
        name = key[0]
        if name in counters or name.removesuffix("_bucket").removesuffix("_count") in histograms:
            assert after[key] >= old, key
            grew += after[key] > old
    assert grew > 10
    assert value(after_text, names.EVENTS_DUPLICATE_TOTAL.name, source="simulator") == 500
    assert value(after_text, names.DEAD_LETTERS_TOTAL.name, source="file", reason="missing_field") == 1


def test_per_agent_series_when_enabled() -> None:
    cfg = config(per_agent=True)
    engine = helpers.engine(config=cfg)
    services = start_services(engine, cfg, serve=True, refresh_every_s=0)
    try:
        engine.process(helpers.batch(SIM_DAY, "simulator"))  # breaks start after ~3700 records
        text = get(services)[0]
    finally:
        services.close()
        engine.close()
    states = [s for (n, _), s in series(text).items() if n == names.AGENT_STATE.name]
    assert states and all(v == 1 for v in states)
    exported = families(text)
    assert exported == {m.name.removesuffix("_total") for m in (*names.ALL, *names.PER_AGENT)}
    for metric in names.PER_AGENT:
        assert f"{metric.name}{{agent=" in text, metric.name  # every per-agent series has samples
    handled = {dict(labels)["window"]: v for (n, labels), v in series(text).items() if n == names.AGENT_HANDLED.name}
    assert set(handled) == {"5m", "15m", "1h"}


def test_promtool_and_prometheus_accept_the_real_output(
    served: tuple[Engine, Services], promtool: Tool, start_prometheus: Callable[..., PrometheusServer]
) -> None:
    engine, services = served
    engine.process(helpers.batch(SIM_DAY[:3000], "simulator"))
    engine.process(helpers.batch(odd_queue_calls(0, 20), "file:/data/odd.jsonl"))
    promtool.ok("check", "metrics", stdin=get(services)[0], timeout=60)

    prom = start_prometheus(scrape_config("callpulse", f"127.0.0.1:{services.config.exporter.port}"))
    offered = prom.wait_for_series(f"{names.CALLS_OFFERED_TOTAL.name}{{queue={json.dumps(ODD)}}}", timeout=40)
    assert offered[0].labels["queue"] == ODD  # escaping survives the round trip
    assert offered[0].value == 20
    up = prom.query('up{job="callpulse"}')
    assert up and up[0].value == 1
    sl = prom.query(f'{names.SERVICE_LEVEL.name}{{queue="billing",window="15m"}}')
    assert sl and 0 <= sl[0].value <= 1
    scraped = {s.labels["__name__"] for s in prom.query('{__name__=~"callpulse_.+"}')}
    expected_some = {
        names.TARGET_SERVICE_LEVEL.name,
        names.BREACH.name,
        names.WAIT.name + "_bucket",
    }
    assert expected_some <= scraped


def test_a_batch_reaches_the_live_counters_before_the_snapshot_is_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    """The publisher runs /metrics' counters (a few small tables) before the KPI snapshot
    (several times their cost): a stored call is counted while the snapshot is still read."""
    hold, taking, release = threading.Event(), threading.Event(), threading.Event()
    real = services_module.take_snapshot

    def held_snapshot(con: Any, windows: Any, **options: Any) -> Any:
        if hold.is_set():
            taking.set()
            release.wait(30)
        return real(con, windows, **options)

    monkeypatch.setattr(services_module, "take_snapshot", held_snapshot)
    cfg = config()
    engine = helpers.engine(config=cfg)
    services = start_services(engine, cfg, serve=False, refresh_every_s=60.0)  # publisher in the background
    try:
        hold.set()
        engine.process(helpers.batch([helpers.offered("p-1", 0)]))
        assert taking.wait(30)  # the publisher is reading the snapshot (held) ...
        live = services.published.get(LIVE_JOB)
        assert live is not None and live.calls["billing"].offered == 1  # ... and /metrics counts the call
        snap = services.published.get("snapshot")
        assert snap is not None and "billing" not in snap.queues  # not yet in the KPIs (the call's queue is new)
    finally:
        release.set()
        services.close()
        engine.close()
    assert services.published.get("snapshot").queues["billing"].windows["15m"].offered == 1


def test_a_batch_reaches_the_live_counters_while_its_breach_check_still_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """The breach check runs on the engine thread after a commit (once a second); the
    publisher must not wait for it: what a batch counted is pushed to /metrics first."""
    checking, release = threading.Event(), threading.Event()

    def held_check(self: BreachDetector, con: Any, max_points: int | None = None) -> int:
        checking.set()
        release.wait(30)
        return 0

    monkeypatch.setattr(BreachDetector, "run", held_check)
    cfg = config()
    engine = helpers.engine(config=cfg)
    services = start_services(engine, cfg, serve=False, refresh_every_s=60.0)  # publisher in the background
    failed: list[BaseException] = []

    def store() -> None:
        try:
            engine.process(helpers.batch([helpers.offered("p-1", 0)]))
        except BaseException as exc:  # shown by the test, not lost on this thread
            failed.append(exc)
            checking.set()

    storing = threading.Thread(target=store)
    try:
        storing.start()
        assert checking.wait(30) and not failed, failed  # stored, and its breach check under way (held) ...
        assert services.refresher.wait_published(30)
        live = services.published.get(LIVE_JOB)
        assert live is not None and live.calls["billing"].offered == 1  # ... and /metrics counts its call
    finally:
        release.set()
        storing.join(30)
        assert not storing.is_alive(), "the batch never finished: the engine is still in use"
        services.close()
        engine.close()
