"""End to end for call quality: simulator -> engine -> /metrics -> Prometheus (the rendered
rules) -> Alertmanager -> webhook, with the pacing of tests/support/alerting.py.

A simulated day in which billing's trunk degrades for an hour (its calls sound poor), fed
at 150x real time. The poor-quality alert reads the quality counters over a short range
(12 s wall = 30 event minutes at this speed), so it must fire for billing and only for
billing, reach the webhook through a real Alertmanager, and resolve once the trunk is
good again; the breaches table (event time) agrees.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from devtools.procs import free_port
from metrics.export import rules
from metrics.export.rules import AlertSettings, RuleSettings
from pipeline.core.config import Config, ExporterSettings
from pipeline.ingest.sources.simulator import Degradation, simulate
from tests.integration.test_alerting_e2e import SIM as STAFFING_SIM
from tests.support.alerting import alerting_pipeline, alerts_in, fired_for_only, record_ts
from tests.support.prometheus import AlertmanagerServer, PrometheusServer

pytestmark = pytest.mark.prometheus

QUEUE = "billing"
HOUR = (datetime.min.time().replace(hour=13), datetime.min.time().replace(hour=14))
# The same two queues as test_alerting_e2e (sales generously staffed), fully staffed all
# day: only billing's trunk goes bad.
SIM = replace(STAFFING_SIM, understaffing=(), quality=True, degradations=(Degradation(QUEUE, *HOUR),))
SETTINGS = AlertSettings(window="15m", poor_quality=RuleSettings("5s", "warning"), quality_window="12s")


def _at(hour: int, minute: int) -> datetime:
    return datetime(2026, 3, 2, hour, minute, tzinfo=ZoneInfo(SIM.tz))


def test_degraded_trunk_fires_the_quality_alert_for_that_queue_only_and_resolves(
    tmp_path: Path,
    start_prometheus: Callable[..., PrometheusServer],
    start_alertmanager: Callable[[str], AlertmanagerServer],
) -> None:
    config = Config(db=tmp_path / "callpulse.duckdb", exporter=ExporterSettings(port=free_port(), breach_hold_s=120))
    records = list(simulate(SIM))
    split = next(i for i, r in enumerate(records) if record_ts(r) >= _at(12, 40).timestamp())
    end = next(i for i, r in enumerate(records) if record_ts(r) >= _at(15, 30).timestamp())
    with alerting_pipeline(tmp_path, config, SETTINGS, records[:split], start_prometheus, start_alertmanager) as run:
        prom, receiver = run.prom, run.receiver
        prom.wait_for_series("callpulse_quality_reports_total", lambda rows: len(rows) == 2, timeout=20)
        assert prom.query(f'ALERTS{{alertname="{rules.POOR_QUALITY_HIGH}"}}') == []

        run.pace(records[split:end], split)
        firing = receiver.wait_for(lambda p: QUEUE in alerts_in(p, rules.POOR_QUALITY_HIGH, "firing"), timeout=90)
        assert firing["status"] == "firing"
        resolved = receiver.wait_for(lambda p: QUEUE in alerts_in(p, rules.POOR_QUALITY_HIGH, "resolved"), timeout=150)
        assert resolved["status"] == "resolved"
        fired_for_only(run, rules.POOR_QUALITY_HIGH, QUEUE, "poor_quality", {"sales"})

    # The breaches table (event time) agrees: billing's poor-quality share breached in the hour, and closed.
    rows = run.engine.store.con.execute(
        "SELECT queue, opened_at, closed_at FROM breaches WHERE kpi = 'poor_quality' AND \"window\" = '15m'"
    ).fetchall()
    run.engine.close()
    assert {q for q, _, _ in rows} == {QUEUE}
    assert any(_at(13, 0) <= opened <= _at(14, 0) for _, opened, _ in rows)
    assert all(closed is not None and closed <= _at(15, 30) for _, _, closed in rows)
