"""End to end: simulator -> engine -> /metrics -> Prometheus (the rendered rules) ->
Alertmanager -> webhook.

A simulated day where one queue (billing) loses most of its agents for an hour, fed
through the engine in-process at 150x real time (tests/support/alerting.py), so that hour lasts ~25 wall seconds.
Prometheus scrapes the real exporter every second and evaluates the generated rules
(15m window, ``for: 5s``); the service-level alert must fire for billing and only for
billing, reach the webhook through a real Alertmanager, and resolve once staffing is
back. Every process is stopped in ``finally`` or by the fixture that started it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from devtools.procs import free_port
from metrics.export import rules
from metrics.export.rules import AlertSettings, RuleSettings
from pipeline.core.config import Config, ExporterSettings
from pipeline.ingest.sources.simulator import QueueSpec, SimConfig, Understaffing, simulate
from tests.support.alerting import alerting_pipeline, alerts_in, fired_for_only, record_ts
from tests.support.prometheus import AlertmanagerServer, PrometheusServer

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
SETTINGS = AlertSettings(window="15m", service_level=RuleSettings("5s", "critical"))


def _sl_alerts(payload: dict[str, Any], status: str) -> set[str]:
    return alerts_in(payload, rules.SERVICE_LEVEL_LOW, status)


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
    split = next(i for i, r in enumerate(records) if record_ts(r) >= PACED_FROM.timestamp())
    end = next(i for i, r in enumerate(records) if record_ts(r) >= PACED_TO.timestamp())
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
