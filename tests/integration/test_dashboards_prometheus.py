"""Every panel query of every generated board returns data from a real Prometheus
scraping a running `callpulse demo` (so no board can show "No data" because of a wrong
name, label or expression).

Grafana's variables are substituted as Grafana would: ``$queue`` with a real queue,
``$agent`` with every agent (the board's default, All), ``$window`` with 15m,
``$__interval`` / ``$__rate_interval`` with 1m. The demo runs with
``[exporter] per_agent = true``, which the agent board's per-agent panels need. Range panels are
evaluated as instant queries at "now" (the last point Grafana would draw).

The Kafka panels (stored offsets, lag) have data only from a worker reading a broker, so
they are checked against `callpulse worker` on a real broker instead of the demo.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dashboards import build as boards
from devtools.kafka import KafkaBroker, create_topic
from devtools.procs import LOOPBACK, ManagedProcess, free_port, wait_until
from metrics.export import names
from pipeline.core.config import KafkaSettings
from pipeline.ingest.sources.kafka import produce_lines, topic_names
from pipeline.ingest.sources.simulator import SimConfig, simulate, write_jsonl
from tests.support.cli import Cli
from tests.support.prometheus import PrometheusServer, Sample, scrape_config
from tests.support.scrape import fetch

pytestmark = pytest.mark.prometheus

VARIABLES = {"$__rate_interval": "1m", "$__interval": "1m", "$window": "15m", "$agent": ".+"}


def substitute(expr: str, queue: str) -> str:
    for name, value in VARIABLES.items():
        expr = expr.replace(name, value)
    return re.sub(r"\$queue\b", queue, expr)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    tmp_path = tmp_path_factory.mktemp("demo")
    port = free_port()
    config = tmp_path / "callpulse.toml"
    config.write_text(f"[exporter]\nport = {port}\nper_agent = true\n")
    proc = ManagedProcess(
        Cli().argv(
            "demo",
            "--config",
            config,
            "--db",
            tmp_path / "demo.duckdb",
            "--speed",
            "300",
            "--duration",
            "300",
            "--quality",  # the call-quality board reads the quality counters
        ),
        tmp_path / "demo.log",
        name="callpulse demo",
        cwd=tmp_path,
    ).start()
    try:
        proc.wait_ready(
            lambda: "callpulse_calls_waiting" in fetch(f"http://{LOOPBACK}:{port}/metrics", timeout=2)[0],
            60,
            "the demo's /metrics",
        )
        yield port
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def prometheus(demo: int) -> Iterator[PrometheusServer]:
    with PrometheusServer(scrape_config("callpulse", f"{LOOPBACK}:{demo}")) as server:
        yield server


KAFKA_ONLY = (names.KAFKA_STORED_OFFSET.name, names.KAFKA_LAG.name)


def _kafka_only(expr: str) -> bool:
    return any(name in expr for name in KAFKA_ONLY)


def _panel_queries() -> list[tuple[str, str, str]]:
    out = []
    for stem, board in boards.build_all().items():
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                out.append((stem, f"{panel['title']} [{target['refId']}]", target["expr"]))
    return out


def _panels_without_data(prometheus: PrometheusServer, queries: list[tuple[str, str, str]], queue: str) -> list[str]:
    failures: list[str] = []
    for stem, where, expr in queries:
        promql = substitute(expr, queue)
        try:
            prometheus.wait_for_series(promql, _has_data, timeout=30)
        except (TimeoutError, Exception) as exc:  # noqa: BLE001 - collect every failing panel
            failures.append(f"{stem}: {where}: {promql}\n    {str(exc)[:300]}")
    return failures


def _has_data(rows: list[Sample]) -> bool:
    return any(not math.isnan(r.value) for r in rows)


def test_every_panel_query_returns_data(prometheus: PrometheusServer) -> None:
    # Enough history for 1m rates and increases, with agents in every state.
    prometheus.wait_for_series("callpulse_calls_offered_total", timeout=60)
    offered = prometheus.wait_for_series("sum by (queue) (increase(callpulse_calls_offered_total[1m])) > 0", timeout=90)
    queue = max(offered, key=lambda r: r.value).labels["queue"]
    prometheus.wait_for_series("count_over_time(callpulse_batch_duration_seconds_count[1m]) >= 10", timeout=60)

    queries = [q for q in _panel_queries() if not _kafka_only(q[2])]
    assert len(queries) > 30
    failures = _panels_without_data(prometheus, queries, queue)
    # Annotation queries must at least evaluate (a breach may or may not be open).
    for board in boards.build_all().values():
        for annotation in board.get("annotations", {}).get("list", []):
            prometheus.query(substitute(annotation["expr"], queue))
    assert not failures, "panels without data:\n" + "\n".join(failures)


def test_supervisor_thresholds_follow_the_exported_targets(prometheus: PrometheusServer) -> None:
    """The hidden threshold query of a KPI tile answers the queue's target when the
    window has enough calls, and a value no KPI can cross otherwise."""
    prometheus.wait_for_series("callpulse_target_service_level_ratio", timeout=60)
    board: dict[str, Any] = boards.build_all()["supervisor-wallboard"]
    tiles = {p["title"].split(" (")[0]: p for p in board["panels"] if p["type"] == "stat"}
    for queue_row in prometheus.query("callpulse_target_service_level_ratio"):
        queue = queue_row.labels["queue"]
        [t] = [t for t in tiles["Service level"]["targets"] if t["refId"] == "T"]
        enough_expr = (
            f'callpulse_window_offered_calls{{queue="{queue}",window="15m"}} '
            f'>= on (queue) callpulse_min_calls{{queue="{queue}"}}'
        )

        def consistent(
            expr: str = substitute(t["expr"], queue),
            target: float = queue_row.value,
            enough_expr: str = enough_expr,
        ) -> bool:
            # Two queries, so retry across a scrape that changes the window's count.
            [threshold] = prometheus.query(expr)
            enough = prometheus.query(enough_expr)
            return threshold.value == (target if enough else -1)

        wait_until(consistent, 30, f"the threshold query of {queue} to match its target")


def test_kafka_panels_return_data_from_a_worker(cli: Cli, kafka_broker: KafkaBroker, tmp_path: Path) -> None:
    queries = [q for q in _panel_queries() if _kafka_only(q[2])]
    assert len(queries) >= 2, "the pipeline-health board lost its Kafka panels"
    tag = uuid.uuid4().hex[:8]
    s = KafkaSettings(bootstrap=kafka_broker.bootstrap, group=f"g-{tag}", topic_prefix=f"t-{tag}.")
    for topic in topic_names(s).values():
        create_topic(kafka_broker.bootstrap, topic, 2)
    day = tmp_path / "day.jsonl"
    write_jsonl(simulate(SimConfig(seed=3, scale=0.05)), day)
    produce_lines(day.read_bytes().splitlines()[:2000], s)
    port = free_port()
    config = tmp_path / "callpulse.toml"
    config.write_text(f'[exporter]\nport = {port}\n[kafka]\nbatch_size = 500\nbatch_within = "200ms"\n')
    argv = cli.argv(
        "worker", "--config", config, "--db", tmp_path / "w.duckdb", "--bootstrap", s.bootstrap,
        "--group", s.group, "--topic-prefix", s.topic_prefix, "--session-timeout", "6",
    )  # fmt: skip
    proc = ManagedProcess(argv, tmp_path / "worker.log", name="callpulse worker", cwd=tmp_path, env=cli.env).start()
    try:
        proc.wait_ready(
            lambda: KAFKA_ONLY[0] in fetch(f"http://{LOOPBACK}:{port}/metrics", timeout=2)[0],
            90,
            "the worker's Kafka offsets on /metrics",
        )
        with PrometheusServer(scrape_config("callpulse", f"{LOOPBACK}:{port}")) as prometheus:
            failures = _panels_without_data(prometheus, queries, queue=".+")
    finally:
        proc.stop()
    assert not failures, "Kafka panels without data:\n" + "\n".join(failures)
