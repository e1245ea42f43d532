"""The real services the integration tests rely on actually start, work and stop.

Nothing is skipped: a component that cannot start fails the test with its log tail.
The service fixtures (tests/conftest.py) stop what they started, so nothing outlives a
failing test.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from devtools import kafka as kafka_support
from devtools.kafka import KafkaBroker, create_topic
from devtools.procs import NO_SERVICES, ManagedProcess, ServiceError, free_port
from tests.support import prometheus as prometheus_support
from tests.support.prometheus import (
    AlertmanagerServer,
    PrometheusServer,
    WebhookReceiver,
    scrape_config,
    webhook_alertmanager_config,
)


def _fresh(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


# --------------------------------------------------------------------------- helpers


def test_startup_failure_reports_the_log_tail(tmp_path: Path) -> None:
    proc = ManagedProcess(
        ["sh", "-c", "echo 'boom: bad config line 3'; exit 3"], tmp_path / "svc.log", name="svc"
    ).start()
    with pytest.raises(ServiceError, match=r"(?s)svc exited with code 3.*boom: bad config"):
        proc.wait_ready(lambda: False, timeout=10, what="svc to be ready")
    assert not proc.running()


def test_stop_kills_the_whole_process_group(tmp_path: Path) -> None:
    # A shell that ignores SIGTERM and has a child: stop() must still end both.
    script = "trap '' TERM; sleep 300 & echo started; wait"
    proc = ManagedProcess(["sh", "-c", script], tmp_path / "svc.log", stop_timeout=1).start()
    proc.wait_ready(lambda: "started" in (tmp_path / "svc.log").read_text(), 10, "the shell")
    pgid = proc.pid
    assert pgid is not None
    proc.stop()
    assert _live_members(pgid) == []


def _live_members(pgid: int) -> list[int]:
    """Pids in process group ``pgid`` that are not zombies (init reaps those later)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


def test_missing_tools_name_the_apt_packages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(NO_SERVICES, raising=False)  # the lookups run; they find nothing
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on PATH
    monkeypatch.setenv("CALLPULSE_CACHE", str(tmp_path / "cache"))  # no jars cached
    with pytest.raises(ServiceError, match="apt-get install -y openjdk-17-jre-headless maven"):
        kafka_support.ensure_kafka_jars()
    monkeypatch.setattr(prometheus_support, "_SEARCH_DIRS", ())
    with pytest.raises(ServiceError, match="install -y --no-install-recommends prometheus "):
        prometheus_support.find_binary("promtool")
    with pytest.raises(ServiceError, match="prometheus-alertmanager"):
        prometheus_support.find_binary("alertmanager")


# --------------------------------------------------------------------------- Kafka


async def _produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value, key=b"q1")
    finally:
        await producer.stop()


async def _consume(bootstrap: str, topic: str, group: str, count: int) -> list[bytes]:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    got: list[bytes] = []
    try:
        async with asyncio.timeout(30):
            while len(got) < count:
                batch = await consumer.getmany(timeout_ms=500)
                for records in batch.values():
                    got.extend(r.value for r in records if r.value is not None)
        await consumer.commit()
    finally:
        await consumer.stop()
    return got


def test_kafka_broker_round_trip_survives_restart(own_kafka_broker: KafkaBroker) -> None:
    bootstrap = own_kafka_broker.bootstrap
    assert bootstrap.startswith("127.0.0.1:")
    topic = _fresh("svc-test")
    create_topic(bootstrap, topic, partitions=2)

    asyncio.run(_produce(bootstrap, topic, [b"call-1"]))
    assert asyncio.run(_consume(bootstrap, topic, _fresh("g"), 1)) == [b"call-1"]

    ports = (own_kafka_broker.port, own_kafka_broker.controller_port)
    own_kafka_broker.stop_process()
    own_kafka_broker.restart_process()
    assert (own_kafka_broker.port, own_kafka_broker.controller_port) == ports
    assert own_kafka_broker.bootstrap == bootstrap

    # The earlier message is still on disk; a new group reads both from the start.
    asyncio.run(_produce(bootstrap, topic, [b"call-2"]))
    got = asyncio.run(_consume(bootstrap, topic, _fresh("g"), 2))
    assert sorted(got) == [b"call-1", b"call-2"]


# --------------------------------------------------------------------------- Prometheus


def test_prometheus_scrapes_an_exporter(start_prometheus: Callable[..., PrometheusServer]) -> None:
    registry = CollectorRegistry()
    gauge = Gauge("callpulse_probe_value", "A known value for the scrape test", registry=registry)
    gauge.set(42.5)
    exporter_port = free_port()
    server, thread = start_http_server(exporter_port, addr="127.0.0.1", registry=registry)
    try:
        prom = start_prometheus(scrape_config("probe", f"127.0.0.1:{exporter_port}"))
        series = prom.wait_for_series('callpulse_probe_value{job="probe"}', lambda rows: len(rows) == 1, timeout=30)
        assert series[0].value == 42.5
        assert series[0].labels["instance"] == f"127.0.0.1:{exporter_port}"
        assert prom.alerts() == []
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_alertmanager_delivers_to_webhook(start_alertmanager: Callable[[str], AlertmanagerServer]) -> None:
    receiver = WebhookReceiver().start()
    try:
        am = start_alertmanager(webhook_alertmanager_config(receiver.url, ["alertname"], send_resolved=False))
        name = _fresh("CallpulseProbe")
        am.post_alerts(
            [
                {
                    "labels": {"alertname": name, "severity": "page", "queue": "sales"},
                    "annotations": {"summary": "probe alert"},
                    "startsAt": datetime.now(UTC).isoformat(),
                }
            ]
        )
        payload = receiver.wait_for(lambda p: p.get("groupLabels", {}).get("alertname") == name, timeout=30)
        assert payload["status"] == "firing"
        assert payload["alerts"][0]["labels"]["queue"] == "sales"
        assert payload["alerts"][0]["annotations"]["summary"] == "probe alert"
    finally:
        receiver.stop()
