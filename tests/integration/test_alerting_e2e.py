"""End to end: simulator -> engine -> /metrics -> Prometheus (the rendered rules) ->
Alertmanager -> webhook.

A simulated day where one queue (billing) loses most of its agents for an hour, fed
through the engine in-process at 150x real time, so that hour lasts ~25 wall seconds.
Prometheus scrapes the real exporter every second and evaluates the generated rules
(15m window, ``for: 5s``); the service-level alert must fire for billing and only for
billing, reach the webhook through a real Alertmanager, and resolve once staffing is
back. Every process is stopped in ``finally`` or by the fixture that started it.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from devtools.procs import free_port
from metrics.export import rules
from metrics.export.rules import AlertSettings, RuleSettings
from pipeline.cli.alerts import render_for_config
from pipeline.cli.services import start_services
from pipeline.core.config import Config, ExporterSettings
from pipeline.core.engine import Engine
from pipeline.ingest.sources.simulator import QueueSpec, SimConfig, Understaffing, simulate
from pipeline.serve.host import Services
from tests import helpers
from tests.support.prometheus import AlertmanagerServer, PrometheusServer, WebhookReceiver, webhook_alertmanager_config

pytestmark = pytest.mark.prometheus

QUEUE = "billing"
SIM = SimConfig(
    seed=1,
    day=date(2026, 3, 2),
    # sales is staffed generously so that only billing can breach
    queues=(
        QueueSpec("billing", 2400, 44, mean_talk_s=240, mean_wrap_s=30, patience_s=90),
        QueueSpec("sales", 1400, 70, mean_talk_s=270, mean_wrap_s=40, patience_s=60),
    ),
    understaffing=(
        Understaffing(QUEUE, datetime.min.time().replace(hour=13), datetime.min.time().replace(hour=14), 0.85),
    ),
)
TZ = ZoneInfo(SIM.tz)
PACED_FROM = datetime(2026, 3, 2, 12, 40, tzinfo=TZ)  # before: fed at once
PACED_TO = datetime(2026, 3, 2, 15, 0, tzinfo=TZ)
SPEED = 150.0  # event seconds per wall second
BATCH_EVENT_S = 60.0
SETTINGS = AlertSettings(window="15m", service_level=RuleSettings("5s", "critical"))


def _ts(record: dict[str, Any]) -> float:
    return datetime.fromisoformat(record["at"]).timestamp()


def _paced(records: list[dict[str, Any]], stop: threading.Event) -> Iterator[list[dict[str, Any]]]:
    """Batches of BATCH_EVENT_S event seconds, released at SPEED x real time."""
    start_event = _ts(records[0])
    start_wall = time.monotonic()
    batch: list[dict[str, Any]] = []
    end = start_event + BATCH_EVENT_S
    for record in records:
        if stop.is_set():
            return
        t = _ts(record)
        if t >= end and batch:
            delay = start_wall + (end - start_event) / SPEED - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            yield batch
            batch = []
            while t >= end:
                end += BATCH_EVENT_S
        batch.append(record)
    if batch:
        yield batch


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
            for records in _paced(self.records, self.stop):
                self.engine.process(helpers.batch(records, "simulator", n))
                n += len(records)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc


def _alerts(payload: dict[str, Any], alertname: str, status: str) -> set[str]:
    """The queues of the ``alertname`` alerts with ``status`` in one webhook payload."""
    return {
        a["labels"].get("queue", "")
        for a in payload.get("alerts", [])
        if a["labels"].get("alertname") == alertname and a.get("status") == status
    }


def _sl_alerts(payload: dict[str, Any], status: str) -> set[str]:
    return _alerts(payload, rules.SERVICE_LEVEL_LOW, status)


def _prometheus_yml(exporter_port: int, am_port: int) -> str:
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
  - job_name: {SETTINGS.job}
    static_configs:
      - targets: ["127.0.0.1:{exporter_port}"]
"""


@dataclass
class Pipeline:
    """An engine fed the day before pacing at once, served to a real Prometheus (with the
    rendered rules) that notifies a real Alertmanager, whose webhook ``receiver`` records."""

    engine: Engine
    prom: PrometheusServer
    receiver: WebhookReceiver
    feeder: Feeder | None = None

    def pace(self, records: list[dict[str, Any]], first: int) -> None:
        """Feed ``records`` (the first one at index ``first`` of the day) at SPEED."""
        self.feeder = Feeder(self.engine, records, first)
        self.feeder.start()


@contextlib.contextmanager
def alerting_pipeline(
    tmp_path: Path,
    config: Config,
    settings: AlertSettings,
    morning: list[dict[str, Any]],
    start_prometheus: Callable[..., PrometheusServer],
    start_alertmanager: Callable[[str], AlertmanagerServer],
) -> Iterator[Pipeline]:
    """Start everything, yield it, then stop the feeder, the services and the webhook (the
    engine stays open: the caller reads its breaches table, then closes it)."""
    rules_path = tmp_path / "callpulse.rules.yml"
    rules_path.write_text(render_for_config(config, base=settings), encoding="utf-8")
    receiver = WebhookReceiver().start()
    engine = helpers.engine(config.db, config)
    services: Services | None = None
    run: Pipeline | None = None
    try:
        engine.process(helpers.batch(morning, "simulator"))  # the morning, at once
        services = start_services(engine, config, serve=True)
        am = start_alertmanager(webhook_alertmanager_config(receiver.url, ["alertname", "queue"], send_resolved=True))
        prom = start_prometheus(_prometheus_yml(config.exporter.port, am.port), rule_files=[rules_path])
        prom.wait_for_series(f'up{{job="{settings.job}"}} == 1', timeout=40)
        run = Pipeline(engine, prom, receiver)
        yield run
        assert run.feeder is None or run.feeder.error is None
    finally:
        if run is not None and run.feeder is not None:
            run.feeder.stop.set()
            run.feeder.join(timeout=30)
        if services is not None:
            services.close()
        receiver.stop()


def fired_for_only(run: Pipeline, alertname: str, queue: str, kpi: str, others: set[str]) -> None:
    """Only ``queue`` ever had ``alertname`` (pending or firing) and only its was delivered;
    the breach series of ``kpi`` (15m) was 1 for it and 0 for the ``others``."""
    seen = run.prom.query(f'max_over_time(ALERTS{{alertname="{alertname}"}}[10m])')
    assert {s.labels["queue"] for s in seen} == {queue}
    delivered = set().union(*(_alerts(p, alertname, "firing") for p in run.receiver.payloads))
    assert delivered == {queue}
    breach = run.prom.query(f'max_over_time(callpulse_kpi_breach{{kpi="{kpi}",window="15m"}}[10m])')
    assert {s.labels["queue"]: s.value for s in breach} == {queue: 1.0, **dict.fromkeys(others, 0.0)}


def test_understaffed_hour_pages_for_that_queue_only_and_resolves(
    tmp_path: Path,
    start_prometheus: Callable[..., PrometheusServer],
    start_alertmanager: Callable[[str], AlertmanagerServer],
) -> None:
    began = time.monotonic()
    config = Config(
        db=tmp_path / "callpulse.duckdb",
        exporter=ExporterSettings(port=free_port(), breach_hold_s=120),
    )
    records = list(simulate(SIM))
    split = next(i for i, r in enumerate(records) if _ts(r) >= PACED_FROM.timestamp())
    end = next(i for i, r in enumerate(records) if _ts(r) >= PACED_TO.timestamp())
    with alerting_pipeline(tmp_path, config, SETTINGS, records[:split], start_prometheus, start_alertmanager) as run:
        prom, receiver = run.prom, run.receiver
        prom.wait_for_series('callpulse_service_level_ratio{window="15m"}', lambda rows: len(rows) == 2, timeout=20)
        assert prom.query(f'ALERTS{{alertname="{rules.SERVICE_LEVEL_LOW}"}}') == []

        run.pace(records[split:end], split)
        paced_at = time.monotonic()
        firing = receiver.wait_for(lambda p: QUEUE in _sl_alerts(p, "firing"), timeout=60)
        fired_after = time.monotonic() - paced_at
        assert firing["status"] == "firing"
        resolved = receiver.wait_for(lambda p: QUEUE in _sl_alerts(p, "resolved"), timeout=150)
        resolved_after = time.monotonic() - paced_at
        assert resolved["status"] == "resolved"
        fired_for_only(run, rules.SERVICE_LEVEL_LOW, QUEUE, "service_level", {"sales"})

    # The breaches table (event time) agrees: billing's 15m service level breached in the hour.
    engine = run.engine
    rows = engine.store.con.execute(
        "SELECT queue, opened_at FROM breaches WHERE kpi = 'service_level' AND \"window\" = '15m'"
    ).fetchall()
    engine.close()
    assert {q for q, _ in rows} == {QUEUE}
    hour = (datetime(2026, 3, 2, 13, 0, tzinfo=TZ), datetime(2026, 3, 2, 14, 0, tzinfo=TZ))
    assert any(hour[0] <= opened <= hour[1] for _, opened in rows)
    print(
        f"\nfired {fired_after:.1f}s and resolved {resolved_after:.1f}s after pacing began; "
        f"whole test {time.monotonic() - began:.1f}s"
    )


# --------------------------------------------------------------------------- alerts CLI


@pytest.mark.parametrize(
    ("target", "page"),
    [(0.8, (4.5, 1.875)), (0.9, (9.0, 3.75)), (0.95, (14.4, 6.0)), (0.99, (14.4, 6.0))],
)
def test_page_burn_rates_fit_the_lowest_target(target: float, page: tuple[float, float]) -> None:
    from pipeline.cli.alerts import fit_burn_rates, max_burn_rate

    fitted = fit_burn_rates(AlertSettings(), target)
    assert tuple(b.factor for b in fitted.burn_page) == page
    assert max(page) < max_burn_rate(target)  # reachable
    assert fitted.burn_ticket == AlertSettings().burn_ticket


def test_burn_rates_never_drop_below_the_ticket_factor() -> None:
    from pipeline.cli.alerts import fit_burn_rates

    fitted = fit_burn_rates(AlertSettings(), 0.5)  # max burn 2x
    assert [b.factor for b in fitted.burn_page] == [1.8, 1.0]


def test_cli_render_and_check(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from pipeline.cli.main import app

    toml = tmp_path / "callpulse.toml"
    toml.write_text("[queues.vip.targets]\nservice_level = 0.9\n", encoding="utf-8")
    out = tmp_path / "rules" / "callpulse.rules.yml"
    runner = CliRunner()
    result = runner.invoke(app, ["alerts", "render", "--out", str(out), "-c", str(toml), "--window", "5m"])
    assert result.exit_code == 0, result.output
    text = out.read_text(encoding="utf-8")
    assert "> 4.5" in text and "> 14.4" not in text  # defaults (80 %) are the lowest target
    assert 'window="5m"' in text
    result = runner.invoke(app, ["alerts", "check", "--rules", str(out)])
    assert result.exit_code == 0, result.output
    assert "SUCCESS" in result.output
    bad = tmp_path / "bad.yml"
    bad.write_text("groups:\n  - name: x\n    rules:\n      - alert: X\n        expr: 'sum(('\n")
    assert runner.invoke(app, ["alerts", "check", "--rules", str(bad)]).exit_code == 1
