"""Several workers scraped by a real Prometheus: the recording rules sum them into one
centre, and a queue alert fires once.

Four in-process exporters, each a fresh registry on its own port: three are the workers
of job ``split`` (billing split between w1 and w2, as around a hand-over; sales on w3
alone), one exports the same centre as a single worker (job ``single``). Counters grow
linearly in time and carry their own timestamps, so a rate over a window the scrapes
fully cover is exactly the slope. Both jobs' rule files are loaded; every recorded value
must equal the number worked out by hand below, for both jobs, and the service-level
alert must be active once for billing in each job (the old per-worker rules gave two).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from devtools.procs import LOOPBACK, free_port
from metrics.export import names
from metrics.export.rules import AlertSettings, RuleSettings, render_rules
from tests.support.prometheus import PrometheusServer, Sample

pytestmark = pytest.mark.prometheus

WINDOW = "20s"  # rate window of the test's rules; scrapes every second fill it in ~21 s
SINCE = time.time() - 1000.0  # counters are slope * (t - SINCE): far from zero, so no extrapolation to zero


@dataclass(frozen=True, slots=True)
class Worker:
    """What one exporter serves: counter slopes (per second) and gauge values, by queue."""

    counters: dict[tuple[str, str], float]  # (metric name, queue) -> per second
    buckets: dict[tuple[str, str], float]  # (queue, le) -> per second
    wait_sum: dict[str, float]  # queue -> seconds of wait per second
    gauges: dict[tuple[str, str], float]  # (metric name, queue) -> value


class _Static:
    """A collector serving ``Worker`` at the time of the scrape (samples timestamped)."""

    def __init__(self, w: Worker) -> None:
        self.w = w

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        # Prometheus keeps whole milliseconds: the value is computed at the millisecond
        # written, and the stamp sits half a millisecond in so that int(stamp * 1000) is it.
        ms = int(time.time() * 1000)
        elapsed = ms / 1000 - SINCE
        now = (ms + 0.5) / 1000
        by_name: dict[str, list[tuple[str, float]]] = {}
        for (metric, queue), slope in self.w.counters.items():
            by_name.setdefault(metric, []).append((queue, slope))
        for metric, rows in by_name.items():
            fam = CounterMetricFamily(metric.removesuffix("_total"), "test", labels=["queue"])
            for queue, slope in rows:
                fam.add_metric([queue], slope * elapsed, timestamp=now)
            yield fam
        if self.w.buckets:
            hist = Metric(names.WAIT.name, "test", "histogram")
            for (queue, le), slope in self.w.buckets.items():
                hist.add_sample(names.WAIT.name + "_bucket", {"queue": queue, "le": le}, slope * elapsed, now)
                if le == "+Inf":
                    hist.add_sample(names.WAIT.name + "_count", {"queue": queue}, slope * elapsed, now)
            for queue, slope in self.w.wait_sum.items():
                hist.add_sample(names.WAIT.name + "_sum", {"queue": queue}, slope * elapsed, now)
            yield hist
        gauges: dict[str, GaugeMetricFamily] = {}
        for (metric, queue), value in self.w.gauges.items():
            window = metric in (names.SERVICE_LEVEL.name, names.WINDOW_OFFERED.name)
            labels = ["queue", "window"] if window else ["queue"]
            fam = gauges.setdefault(metric, GaugeMetricFamily(metric, "test", labels=labels))
            fam.add_metric([queue, "15m"] if window else [queue], value)
        yield from gauges.values()


def _config_gauges(queues: Iterable[str]) -> dict[tuple[str, str], float]:
    out: dict[tuple[str, str], float] = {}
    for q in queues:
        out[(names.TARGET_SERVICE_LEVEL.name, q)] = 0.8
        out[(names.MIN_CALLS.name, q)] = 10.0
    return out


OFFERED, IN_SL, ABANDONED = (
    names.CALLS_OFFERED_TOTAL.name,
    names.CALLS_ANSWERED_IN_SL_TOTAL.name,
    names.CALLS_ABANDONED_TOTAL.name,
)
SL, WIN_OFFERED = names.SERVICE_LEVEL.name, names.WINDOW_OFFERED.name

# billing: w1 offered 1/s (0.25 in SL, 0.5 abandoned), w2 3/s (2.75 in SL): 4/s, SL 3/4,
# abandoned 0.5/4. Waits: w1 le15 0.5, le60 1, +Inf 1, sum 30; w2 le15 0.5, le60 2.8,
# +Inf 3, sum 60 -> count 4, mean 90/4 = 22.5 s; p90: rank 3.6 in (15, 60]:
# 15 + 45 * 2.6 / 2.8. sales (w3): 1/s offered, none in SL -> SL 0, abandoned 0.
# Gauges: billing's 15m SL is 0.6 at its owner w2, w1 still shows its copy 0.7;
# sales 0.9 on 50 calls (no breach).
W1 = Worker(
    counters={(OFFERED, "billing"): 1.0, (IN_SL, "billing"): 0.25, (ABANDONED, "billing"): 0.5},
    buckets={("billing", "15.0"): 0.5, ("billing", "60.0"): 1.0, ("billing", "+Inf"): 1.0},
    wait_sum={"billing": 30.0},
    gauges={(SL, "billing"): 0.7, (WIN_OFFERED, "billing"): 40.0, **_config_gauges(["billing", "sales"])},
)
W2 = Worker(
    counters={(OFFERED, "billing"): 3.0, (IN_SL, "billing"): 2.75},
    buckets={("billing", "15.0"): 0.5, ("billing", "60.0"): 2.8, ("billing", "+Inf"): 3.0},
    wait_sum={"billing": 60.0},
    gauges={(SL, "billing"): 0.6, (WIN_OFFERED, "billing"): 50.0, **_config_gauges(["billing", "sales"])},
)
W3 = Worker(
    counters={(OFFERED, "sales"): 1.0},
    buckets={},
    wait_sum={},
    gauges={(SL, "sales"): 0.9, (WIN_OFFERED, "sales"): 50.0, **_config_gauges(["billing", "sales"])},
)
SINGLE = Worker(
    counters={(OFFERED, "billing"): 4.0, (IN_SL, "billing"): 3.0, (ABANDONED, "billing"): 0.5, (OFFERED, "sales"): 1.0},
    buckets={("billing", "15.0"): 1.0, ("billing", "60.0"): 3.8, ("billing", "+Inf"): 4.0},
    wait_sum={"billing": 90.0},
    gauges={
        (SL, "billing"): 0.6,
        (WIN_OFFERED, "billing"): 50.0,
        (SL, "sales"): 0.9,
        (WIN_OFFERED, "sales"): 50.0,
        **_config_gauges(["billing", "sales"]),
    },
)

EXPECTED: dict[str, dict[str, float]] = {
    f"job_queue:callpulse_calls_offered:rate{WINDOW}": {"billing": 4.0, "sales": 1.0},
    f"job_queue:callpulse_service_level:ratio_rate{WINDOW}": {"billing": 0.75, "sales": 0.0},
    f"job_queue:callpulse_abandoned:ratio_rate{WINDOW}": {"billing": 0.125, "sales": 0.0},
    f"job_queue:callpulse_call_wait_seconds:mean_rate{WINDOW}": {"billing": 22.5},
    f"job_queue:callpulse_call_wait_seconds:p90_rate{WINDOW}": {"billing": 15 + 45 * 2.6 / 2.8},
    "job_queue_window:callpulse_service_level_ratio:min": {"billing": 0.6, "sales": 0.9},
}


def _serve(worker: Worker, servers: list) -> str:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Static(worker))
    port = free_port()
    servers.append(start_http_server(port, addr=LOOPBACK, registry=registry)[0])
    return f"{LOOPBACK}:{port}"


def _by_queue(samples: list[Sample], job: str) -> dict[str, float]:
    return {s.labels["queue"]: s.value for s in samples if s.labels.get("job") == job}


def _close(got: dict[str, float], want: dict[str, float]) -> bool:
    return got.keys() == want.keys() and all(abs(got[q] - want[q]) <= 1e-6 * max(1.0, abs(want[q])) for q in want)


def test_recording_rules_sum_three_workers_like_one_and_the_alert_fires_once(tmp_path: Path, start_prometheus) -> None:
    servers: list = []
    try:
        split = [_serve(w, servers) for w in (W1, W2, W3)]
        single = _serve(SINGLE, servers)
        rule_files = []
        for job in ("split", "single"):
            settings = AlertSettings(job=job, rate_windows=(WINDOW,), service_level=RuleSettings("0s", "critical"))
            path = tmp_path / f"{job}.rules.yml"
            path.write_text(render_rules(settings), encoding="utf-8")
            rule_files.append(path)
        config = f"""
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: split
    static_configs:
      - targets: {split}
  - job_name: single
    static_configs:
      - targets: ["{single}"]
"""
        prom: PrometheusServer = start_prometheus(config, rule_files)
        for record, want in EXPECTED.items():
            query = f'{record}{{window="15m"}}' if "_window:" in record else record
            for job in ("split", "single"):
                prom.wait_for_series(query, lambda got, job=job, want=want: _close(_by_queue(got, job), want), 90)

        def firing() -> list[dict]:
            return [a for a in prom.alerts() if a["labels"]["alertname"] == "CallpulseServiceLevelLow"]

        prom.wait_for_series("ALERTS", lambda _: {a["labels"]["job"] for a in firing()} == {"split", "single"}, 30)
        alerts = firing()
        for job in ("split", "single"):
            (alert,) = [a for a in alerts if a["labels"]["job"] == job]
            assert alert["labels"]["queue"] == "billing" and "instance" not in alert["labels"]
            assert float(alert["value"]) == pytest.approx(0.6)
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()
