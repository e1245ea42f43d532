"""Pipeline health on a served /metrics: the Kafka offsets DuckDB holds and the lag behind
each partition's high watermark, refresh jobs that raised (counted across a restart), and
the data's age; the wallboard feed carries the same age."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from devtools.procs import free_port
from metrics.export import names
from pipeline.cli.services import start_services
from pipeline.core.config import Config, ExporterSettings
from pipeline.core.records import SourceOffset
from pipeline.serve.host import Services
from tests import helpers

EVENT = {"type": "call", "event": "offered", "call_id": "c1", "queue": "billing", "at": "2026-03-02T09:00:00Z"}
Sample = tuple[str, tuple[tuple[str, str], ...]]


def scrape(services: Services, path: str = "/metrics") -> str:
    assert services.server is not None
    with urllib.request.urlopen(services.server.url + path, timeout=5) as response:
        return str(response.read().decode())


def samples(text: str) -> dict[Sample, float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    }


def part(topic: str, partition: int) -> tuple[tuple[str, str], ...]:
    return (("partition", str(partition)), ("topic", topic))


def test_stored_offsets_lag_and_data_age(tmp_path: Path) -> None:
    cfg = Config(exporter=ExporterSettings(port=free_port()))
    engine = helpers.engine(db=tmp_path / "cp.duckdb", config=cfg)
    services = start_services(engine, cfg, serve=True, refresh_every_s=0)
    try:
        batch = helpers.batch([EVENT])
        batch.offsets = [
            SourceOffset("kafka:callpulse.calls", 0, 41, high_watermark=50),
            SourceOffset("kafka:callpulse.calls", 1, 9),  # high watermark not known
            SourceOffset("kafka:callpulse.agents", 0, 6, high_watermark=7),  # caught up
        ]
        engine.process(batch)
        text = scrape(services)
        feed = json.loads(scrape(services, "/api/wallboard"))
    finally:
        services.close()
        engine.close()
    got = samples(text)
    offsets = {k: v for k, v in got.items() if k[0] in (names.KAFKA_STORED_OFFSET.name, names.KAFKA_LAG.name)}
    assert offsets == {
        (names.KAFKA_STORED_OFFSET.name, part("callpulse.calls", 0)): 41,
        (names.KAFKA_LAG.name, part("callpulse.calls", 0)): 50 - 41 - 1,
        (names.KAFKA_STORED_OFFSET.name, part("callpulse.calls", 1)): 9,
        (names.KAFKA_STORED_OFFSET.name, part("callpulse.agents", 0)): 6,
        (names.KAFKA_LAG.name, part("callpulse.agents", 0)): 0,
    }
    promtool = shutil.which("promtool")
    assert promtool is not None, "promtool not found: apt-get install -y --no-install-recommends prometheus"
    check = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    assert check.returncode == 0 and not check.stdout.strip() and not check.stderr.strip(), check.stdout + check.stderr
    age = (helpers.CLOCK - datetime(2026, 3, 2, 9, 0, tzinfo=UTC)).total_seconds()
    assert got[(names.WATERMARK_LAG.name, ())] == age
    assert feed["data_age_s"] == age


def test_refresh_failures_are_counted_by_job_and_kept_across_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "cp.duckdb"

    def boom(_con: object) -> None:
        raise RuntimeError("a board query broke")

    def run(batches: int, failing: bool) -> dict[Sample, float]:
        cfg = Config(exporter=ExporterSettings(port=free_port()))
        engine = helpers.engine(db=db, config=cfg)
        services = start_services(engine, cfg, serve=True, refresh_every_s=0)
        try:
            if failing:  # the snapshot fails at each refresh; the next scrape counts every failure so far
                services.refresher.jobs["snapshot"] = boom
            for i in range(batches):
                engine.process(helpers.batch([dict(EVENT, call_id=f"c{i}")]))
            return samples(scrape(services))
        finally:
            services.close()
            engine.close()

    def failures(got: dict[Sample, float]) -> dict[str, float]:
        return {dict(k[1])["job"]: v for k, v in got.items() if k[0] == names.REFRESH_FAILURES_TOTAL.name}

    first = failures(run(2, failing=True))
    assert first["snapshot"] == 2  # one refresh per batch (refresh_every_s 0)
    assert first["exporter"] == 0 and first["wallboard"] == 0  # every job has a series
    assert failures(run(1, failing=False))["snapshot"] == 2  # after a restart: not reset to 0
