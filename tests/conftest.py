"""Fixtures shared by every test: the command line, the real services, their markers.

A test that uses a service fixture below gets that service's marker (``kafka``,
``prometheus``, ``chromium``) at collection, so ``make unit`` (which deselects them)
never needs the service. Tests that start a service some other way carry the marker
themselves; ``make unit`` sets ``CALLPULSE_NO_SERVICES`` so one that forgets it fails.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from devtools.kafka import KafkaBroker
from devtools.procs import ServiceError
from tests.support.cli import Cli
from tests.support.prometheus import AlertmanagerServer, PrometheusServer, Tool, find_binary

# Fixture name -> the marker of the service it starts (also through fixtures that use it).
SERVICE_FIXTURES = {
    "kafka_broker": "kafka",
    "own_kafka_broker": "kafka",
    "promtool": "prometheus",
    "amtool": "prometheus",
    "start_prometheus": "prometheus",
    "start_alertmanager": "prometheus",
    "chromium": "chromium",
}


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        for fixture, marker in SERVICE_FIXTURES.items():
            if fixture in used:
                item.add_marker(marker)


@pytest.fixture
def cli() -> Cli:
    """``python -m pipeline.cli …`` (``cli.analyst`` for the analysts' command), PII key set."""
    return Cli()


# --------------------------------------------------------------------------- Kafka


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[KafkaBroker]:
    """One broker for the session; tests keep apart by their own topics and groups."""
    with KafkaBroker() as broker:
        yield broker


@pytest.fixture
def own_kafka_broker() -> Iterator[KafkaBroker]:
    """A broker for this test alone (it may stop and restart it)."""
    with KafkaBroker() as broker:
        yield broker


# --------------------------------------------------------------------------- Prometheus


def _tool(name: str) -> Tool:
    try:
        return Tool(find_binary(name))
    except ServiceError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def promtool() -> Tool:
    return _tool("promtool")


@pytest.fixture(scope="session")
def amtool() -> Tool:
    return _tool("amtool")


@pytest.fixture
def start_prometheus() -> Iterator[Callable[..., PrometheusServer]]:
    """``start_prometheus(config_yaml, rule_files=())``: a started server, stopped after the test."""
    started: list[PrometheusServer] = []

    def start(config_yaml: str, rule_files: Sequence[Path] = ()) -> PrometheusServer:
        server = PrometheusServer(config_yaml, rule_files)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def start_alertmanager() -> Iterator[Callable[[str], AlertmanagerServer]]:
    """``start_alertmanager(config_yaml)``: a started server, stopped after the test."""
    started: list[AlertmanagerServer] = []

    def start(config_yaml: str) -> AlertmanagerServer:
        server = AlertmanagerServer(config_yaml)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()
