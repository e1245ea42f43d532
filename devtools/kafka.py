"""A real single-node Apache Kafka (KRaft) broker for tests and local development.

The broker's jars come from Maven Central through ``deploy/kafka/pom.xml`` and are cached
outside the repo in ``${CALLPULSE_CACHE:-~/.cache/callpulse}/kafka-<version>/libs``.
No Docker, no tarball: ``java -cp 'libs/*' kafka.Kafka server.properties``.

Lifecycle of ``KafkaBroker``:
  ``start()``           ensure jars, write server.properties, format storage once, launch
                        the JVM, and return only when a real client fetches metadata.
  ``stop_process()``    stop the JVM but keep ports and data (a "broker down" window).
  ``restart_process()`` launch again on the same ports and data; waits until ready.
  ``stop()``            stop the JVM and delete the data dir if the broker made it.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import fcntl
import hashlib
import os
import shutil
import string
import subprocess
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Self, TypeVar

from devtools.procs import (
    LOOPBACK,
    ManagedProcess,
    ServiceError,
    StartStop,
    free_port,
    port_open,
    refuse_if_services_off,
    wait_until,
)

KAFKA_VERSION = "3.9.1"
REPO_ROOT = Path(__file__).resolve().parents[1]
DEPLOY_DIR = REPO_ROOT / "deploy" / "kafka"
POM = DEPLOY_DIR / "pom.xml"
SERVER_TEMPLATE = DEPLOY_DIR / "server.properties.template"
LOG4J_CONFIG = DEPLOY_DIR / "log4j.properties"
JAVA_INSTALL_HINT = "apt-get install -y openjdk-17-jre-headless maven"
MARKER = ".complete"
DEFAULT_HEAP = "512m"
START_TIMEOUT = 60.0

T = TypeVar("T")


# --------------------------------------------------------------------------- jars


def cache_root() -> Path:
    """``$CALLPULSE_CACHE`` or ``~/.cache/callpulse``."""
    env = os.environ.get("CALLPULSE_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "callpulse"


def kafka_home() -> Path:
    return cache_root() / f"kafka-{KAFKA_VERSION}"


def _require_tools(*names: str) -> dict[str, str]:
    found = {name: shutil.which(name) for name in names}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        raise ServiceError(
            f"Kafka needs {' and '.join(missing)} on PATH, not found; install it with: {JAVA_INSTALL_HINT}"
        )
    return {name: path for name, path in found.items() if path is not None}


def _pom_digest() -> str:
    return hashlib.sha256(POM.read_bytes()).hexdigest()


def _jars_complete(libs: Path) -> bool:
    marker = libs / MARKER
    return marker.is_file() and marker.read_text().strip() == _pom_digest()


def ensure_kafka_jars() -> Path:
    """Return the directory holding every jar the broker needs, fetching it once.

    Fast path: the marker file written after a successful fetch matches the pom's digest,
    so Maven is not run at all. Otherwise Maven copies the dependencies into a scratch
    dir that is renamed into place; a file lock keeps concurrent callers from racing.
    Raises ``ServiceError`` naming the apt packages if ``java`` or ``mvn`` is missing.
    """
    refuse_if_services_off("Kafka")
    home = kafka_home()
    libs = home / "libs"
    if _jars_complete(libs):
        _require_tools("java")
        return libs
    tools = _require_tools("java", "mvn")
    home.mkdir(parents=True, exist_ok=True)
    with open(home / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _jars_complete(libs):  # another process fetched them while we waited
            return libs
        scratch = Path(tempfile.mkdtemp(prefix="libs.", dir=home))
        try:
            cmd = [
                tools["mvn"], "-q", "-B", "-f", str(POM),
                "dependency:copy-dependencies", f"-DoutputDirectory={scratch}",
            ]  # fmt: skip
            result = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if result.returncode != 0 or not any(scratch.glob("kafka_2.13-*.jar")):
                output = (result.stdout + result.stderr).strip().splitlines()[-30:]
                raise ServiceError(
                    f"Maven could not fetch the Kafka {KAFKA_VERSION} jars "
                    f"(exit {result.returncode}): {' '.join(cmd)}\n" + "\n".join(output)
                )
            (scratch / MARKER).write_text(_pom_digest() + "\n")
            if libs.exists():
                shutil.rmtree(libs)
            scratch.rename(libs)
        finally:
            if scratch.exists():
                shutil.rmtree(scratch, ignore_errors=True)
    return libs


# --------------------------------------------------------------------------- client helpers


def _run_sync(factory: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to completion from sync code, even if a loop is already running
    in this thread (then it runs on a fresh loop in a helper thread)."""

    async def main() -> T:
        return await factory()

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        in_loop = False
    else:
        in_loop = True
    if not in_loop:
        return asyncio.run(main())
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, main()).result()


async def describe_cluster_async(bootstrap: str, timeout: float = 5.0) -> dict[str, Any]:
    """Cluster metadata as seen by a real Kafka client (aiokafka's admin client)."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
    await admin.start()
    try:
        return await admin.describe_cluster()
    finally:
        await admin.close()


def describe_cluster(bootstrap: str, timeout: float = 5.0) -> dict[str, Any]:
    return _run_sync(lambda: describe_cluster_async(bootstrap, timeout))


async def create_topic_async(bootstrap: str, name: str, partitions: int = 1, timeout: float = 30.0) -> None:
    """Create a topic (replication 1) and wait until every partition has a leader."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.client import AIOKafkaClient
    from aiokafka.structs import TopicPartition

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(name=name, num_partitions=partitions, replication_factor=1)],
            timeout_ms=int(timeout * 1000),
        )
    finally:
        await admin.close()

    client = AIOKafkaClient(bootstrap_servers=bootstrap)
    await client.bootstrap()
    try:
        deadline = time.monotonic() + timeout
        while True:
            await client.force_metadata_update()
            parts = client.cluster.partitions_for_topic(name) or set()
            leaders = [client.cluster.leader_for_partition(TopicPartition(name, p)) for p in parts]
            if len(parts) == partitions and all(x is not None and x >= 0 for x in leaders):
                return
            if time.monotonic() >= deadline:
                raise TimeoutError(f"topic {name!r} has no leader for every partition")
            await asyncio.sleep(0.1)
    finally:
        await client.close()


def create_topic(bootstrap: str, name: str, partitions: int = 1, timeout: float = 30.0) -> None:
    """Sync wrapper around ``create_topic_async``."""
    _run_sync(lambda: create_topic_async(bootstrap, name, partitions, timeout))


# --------------------------------------------------------------------------- broker


def new_cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes, URL-safe base64 without padding.

    Same format as ``kafka.tools.StorageTool random-uuid`` (org.apache.kafka.common.Uuid),
    which also never starts with '-'; made here to save one JVM start per broker.
    """
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


class KafkaBroker(StartStop):
    """One combined KRaft broker+controller on 127.0.0.1 (see module docstring)."""

    def __init__(
        self,
        data_dir: Path | None = None,
        *,
        port: int | None = None,
        controller_port: int | None = None,
        heap: str = DEFAULT_HEAP,
        start_timeout: float = START_TIMEOUT,
    ) -> None:
        self._owns_dir = data_dir is None
        self.data_dir = Path(tempfile.mkdtemp(prefix="callpulse-kafka-")) if data_dir is None else data_dir
        self.port = port or free_port()
        self.controller_port = controller_port or free_port()
        self.heap = heap
        self.start_timeout = start_timeout
        self.process: ManagedProcess | None = None
        self.startup_seconds: float | None = None  # of the last start/restart

    @property
    def bootstrap(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    @property
    def config_path(self) -> Path:
        return self.data_dir / "server.properties"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def render_config(self) -> str:
        template = string.Template(SERVER_TEMPLATE.read_text())
        return template.substitute(
            port=self.port,
            controller_port=self.controller_port,
            log_dirs=self.data_dir / "kraft",
        )

    def _java_argv(self, libs: Path, main: str, *args: str) -> list[str]:
        return [
            "java",
            f"-Xms{min(128, _megabytes(self.heap))}m",
            f"-Xmx{self.heap}",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j.configuration={LOG4J_CONFIG.as_uri()}",
            f"-Dkafka.logs.dir={self.log_dir}",
            "-cp",
            f"{libs}/*",
            main,
            *args,
        ]

    def _format_storage(self, libs: Path) -> None:
        if (self.data_dir / "kraft" / "meta.properties").exists():
            return
        cmd = self._java_argv(
            libs, "kafka.tools.StorageTool", "format",
            "-t", new_cluster_id(), "-c", str(self.config_path),
        )  # fmt: skip
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise ServiceError(
                f"kafka StorageTool format failed (exit {result.returncode}):\n{result.stdout}{result.stderr}"
            )

    def start(self) -> Self:
        """Write config, format storage (first time), launch and wait until ready."""
        libs = ensure_kafka_jars()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(exist_ok=True)
        self.config_path.write_text(self.render_config())
        self._format_storage(libs)
        self._launch(libs)
        return self

    def _launch(self, libs: Path) -> None:
        for p in (self.port, self.controller_port):
            if port_open(p):
                raise ServiceError(f"port {LOOPBACK}:{p} for Kafka is already in use")
        began = time.monotonic()
        self.process = ManagedProcess(
            self._java_argv(libs, "kafka.Kafka", str(self.config_path)),
            self.log_dir / "kafka.out",
            name=f"kafka broker {self.bootstrap}",
            extra_logs=[self.log_dir / "server.log"],
            stop_timeout=30.0,
        ).start()
        self.process.wait_ready(self._ready, self.start_timeout, f"Kafka at {self.bootstrap} to serve metadata")
        self.startup_seconds = time.monotonic() - began

    def _ready(self) -> bool:
        if not port_open(self.port):
            return False
        cluster = describe_cluster(self.bootstrap, timeout=5.0)
        return bool(cluster.get("brokers")) and cluster.get("controller_id", -1) >= 0

    def stop_process(self) -> None:
        """Stop the JVM (SIGTERM: controlled shutdown) but keep ports and data."""
        if self.process is not None:
            self.process.stop()
            # The ports must really be released before a restart can bind them.
            wait_until(
                lambda: not port_open(self.port) and not port_open(self.controller_port),
                15.0,
                f"Kafka ports {self.port}/{self.controller_port} to close",
            )

    def restart_process(self) -> None:
        """Start the JVM again with the same ports, config and data; waits until ready."""
        if self.process is not None and self.process.running():
            raise ServiceError("Kafka is still running; call stop_process() first")
        self._launch(ensure_kafka_jars())

    pause = stop_process
    resume = restart_process

    def stop(self) -> None:
        """Stop the JVM; delete the data dir if this broker created it."""
        try:
            if self.process is not None:
                self.process.stop()
        finally:
            if self._owns_dir:
                shutil.rmtree(self.data_dir, ignore_errors=True)


def _megabytes(size: str) -> int:
    """'512m' -> 512, '1g' -> 1024 (JVM -Xmx syntax, m/g only)."""
    unit = size[-1].lower()
    value = int(size[:-1])
    with contextlib.suppress(KeyError):
        return value * {"m": 1, "g": 1024}[unit]
    raise ValueError(f"heap size must end in m or g, got {size!r}")


async def end_offsets_async(bootstrap: str, topics: dict[str, int]) -> dict[tuple[str, int], int]:
    """Each partition's next offset (``topics``: name → partition count), asked of the broker
    by a consumer outside every group."""
    from aiokafka import AIOKafkaConsumer
    from aiokafka.structs import TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t, n in topics.items() for p in range(n)]
        return {(tp.topic, tp.partition): o for tp, o in (await consumer.end_offsets(tps)).items()}
    finally:
        # aiokafka 0.14 lets its group-less coordinator's cancelled task escape stop()
        with contextlib.suppress(asyncio.CancelledError):
            await consumer.stop()


def end_offsets(bootstrap: str, topics: dict[str, int]) -> dict[tuple[str, int], int]:
    return _run_sync(lambda: end_offsets_async(bootstrap, topics))
