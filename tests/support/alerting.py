"""The alerting end-to-end tests' pipeline: an engine fed a simulated day, its /metrics
scraped by a real Prometheus with the rendered rules, notifying a real Alertmanager whose
webhook records what it delivers.

The morning is fed at once; the part under test is paced at ``SPEED`` x real time (a
``Feeder`` thread, the engine's), so an hour of the day lasts ~25 wall seconds while
Prometheus scrapes every second. Every process is stopped on leaving the ``with``.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from metrics.export.rules import AlertSettings
from pipeline.cli.alerts import render_for_config
from pipeline.cli.main import paced
from pipeline.cli.services import start_services
from pipeline.core.config import Config
from pipeline.core.engine import Engine
from pipeline.serve.host import Services
from tests import helpers
from tests.support.prometheus import AlertmanagerServer, PrometheusServer, WebhookReceiver, webhook_alertmanager_config

SPEED = 150.0  # event seconds per wall second
BATCH_EVENT_S = 60.0


def record_ts(record: dict[str, Any]) -> float:
    return datetime.fromisoformat(record["at"]).timestamp()


class Feeder(threading.Thread):
    """The engine's thread: processes the paced batches (the refresher runs here too)."""

    def __init__(self, engine: Engine, records: list[dict[str, Any]], first: int) -> None:
        super().__init__(name="feeder", daemon=True)
        self.engine, self.records, self.first = engine, records, first
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        n = self.first
        try:
            for records in paced(self.records, SPEED, BATCH_EVENT_S):
                if self.stop.is_set():
                    return
                self.engine.process(helpers.batch(records, "simulator", n))
                n += len(records)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc


def alerts_in(payload: dict[str, Any], alertname: str, status: str) -> set[str]:
    """The queues of the ``alertname`` alerts with ``status`` in one webhook payload."""
    return {
        a["labels"].get("queue", "")
        for a in payload.get("alerts", [])
        if a["labels"].get("alertname") == alertname and a.get("status") == status
    }


def prometheus_yml(job: str, exporter_port: int, am_port: int) -> str:
    return f"""
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
alerting:
  alertmanagers:
    - static_configs:
        - targets: ["127.0.0.1:{am_port}"]
scrape_configs:
  - job_name: {job}
    static_configs:
      - targets: ["127.0.0.1:{exporter_port}"]
"""


@dataclass
class Pipeline:
    """An engine fed the day before pacing at once, served to a real Prometheus (with the
    rendered rules) that notifies a real Alertmanager, whose webhook ``receiver`` records."""

    engine: Engine
    services: Services
    prom: PrometheusServer
    receiver: WebhookReceiver
    feeders: list[Feeder] = field(default_factory=list)

    def pace(self, records: list[dict[str, Any]], first: int) -> Feeder:
        """Feed ``records`` (the first one at index ``first`` of the day) at SPEED."""
        feeder = Feeder(self.engine, records, first)
        self.feeders.append(feeder)
        feeder.start()
        return feeder


@contextlib.contextmanager
def alerting_pipeline(
    tmp_path: Path,
    config: Config,
    settings: AlertSettings,
    morning: list[dict[str, Any]],
    start_prometheus: Callable[..., PrometheusServer],
    start_alertmanager: Callable[[str], AlertmanagerServer],
) -> Iterator[Pipeline]:
    """Start everything, yield it, then stop the feeders, the services and the webhook (the
    engine stays open for the caller to read its tables and close, unless this failed)."""
    rules_path = tmp_path / "callpulse.rules.yml"
    rules_path.write_text(render_for_config(config, base=settings), encoding="utf-8")
    receiver = WebhookReceiver().start()
    engine = helpers.engine(config.db, config)
    services: Services | None = None
    run: Pipeline | None = None
    ok = False
    try:
        engine.process(helpers.batch(morning, "simulator"))  # the morning, at once
        services = start_services(engine, config, serve=True)
        am = start_alertmanager(webhook_alertmanager_config(receiver.url, ["alertname", "queue"], send_resolved=True))
        prom = start_prometheus(prometheus_yml(settings.job, config.exporter.port, am.port), rule_files=[rules_path])
        prom.wait_for_series(f'up{{job="{settings.job}"}} == 1', timeout=40)
        run = Pipeline(engine, services, prom, receiver)
        yield run
        assert all(f.error is None for f in run.feeders), [f.error for f in run.feeders]
        ok = True
    finally:
        for feeder in run.feeders if run is not None else []:
            feeder.stop.set()
            feeder.join(timeout=30)
        if services is not None:
            services.close()
        receiver.stop()
        if not ok:
            engine.close()


def fired_for_only(run: Pipeline, alertname: str, queue: str, kpi: str, others: set[str]) -> None:
    """Only ``queue`` ever had ``alertname`` (pending or firing) and only its was delivered;
    the breach series of ``kpi`` (15m) was 1 for it and 0 for the ``others``."""
    seen = run.prom.query(f'max_over_time(ALERTS{{alertname="{alertname}"}}[10m])')
    assert {s.labels["queue"] for s in seen} == {queue}
    delivered = set().union(*(alerts_in(p, alertname, "firing") for p in run.receiver.payloads))
    assert delivered == {queue}
    breach = run.prom.query(f'max_over_time(callpulse_kpi_breach{{kpi="{kpi}",window="15m"}}[10m])')
    assert {s.labels["queue"]: s.value for s in breach} == {queue: 1.0, **dict.fromkeys(others, 0.0)}
