"""deploy/docker-compose.yml runs N workers (`docker compose up --scale worker=3`), checked
without Docker (not installed on the test machines): the file's structure, the config it
mounts, Prometheus finding every replica, and the worker's start script for real.

The script is run as the container would run it (``/bin/sh -c``, compose's ``$$`` read as
``$``) with a stand-in ``callpulse`` on PATH that records its arguments and waits: three
replicas started together must take three different database files, a fourth finds no
free slot when only three are allowed... and a slot freed by a stopped replica is taken
by the next one.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from devtools.procs import wait_until
from pipeline.core.config import load_config

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def _compose() -> dict[str, Any]:
    data = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _worker() -> dict[str, Any]:
    worker = _compose()["services"]["worker"]
    assert isinstance(worker, dict)
    return worker


def _mounts(service: dict[str, Any]) -> dict[str, str]:
    """Target path -> source (volume name or host path) of a service's volumes."""
    out = {}
    for v in service.get("volumes", []):
        if isinstance(v, str):
            source, target = v.split(":")[:2]
        else:
            source, target = v["source"], v["target"]
        out[target] = source
    return out


def test_the_worker_service_can_be_scaled() -> None:
    worker = _worker()
    # Anything fixed per container would collide between replicas.
    assert "container_name" not in worker and "hostname" not in worker
    for port in worker.get("ports", []):
        host = str(port).rsplit(":", 1)[0]
        first, _, last = host.rsplit(":", 1)[-1].partition("-")
        assert last and int(last) - int(first) + 1 >= 3, f"a fixed host port allows one replica: {port}"
        assert str(port).startswith("127.0.0.1:"), port


def test_each_replica_its_own_database_and_all_one_parquet_store() -> None:
    compose, worker = _compose(), _worker()
    config = load_config(DEPLOY / "callpulse.toml")
    mounts = _mounts(worker)
    assert config.analyst.parquet is not None
    store = str(config.analyst.parquet)
    assert mounts.get(store) in compose["volumes"], f"{store} must be a named volume every replica mounts"
    assert mounts.get("/var/lib/callpulse") in compose["volumes"]
    assert mounts[store] != mounts["/var/lib/callpulse"]
    # One config file for every replica: a worker id in it would file them all in one folder.
    assert config.analyst.parquet_worker == ""
    script = worker["command"][-1]
    assert "--db" in script and "flock -n" in script


def test_prometheus_finds_every_replica_by_dns() -> None:
    prom = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text(encoding="utf-8"))
    (job,) = [j for j in prom["scrape_configs"] if j["job_name"] == "callpulse"]
    assert "static_configs" not in job
    (sd,) = job["dns_sd_configs"]
    port = load_config(DEPLOY / "callpulse.toml").exporter.port
    assert sd == {"names": ["worker"], "type": "A", "port": port, "refresh_interval": "15s"}
    assert "worker" in _compose()["services"]


@pytest.fixture
def replicas(tmp_path: Path) -> Iterator[tuple[Path, list[subprocess.Popen[str]]]]:
    """Starts replicas of the worker's start script in ``tmp_path`` (the data volume)."""
    data = tmp_path / "data"
    data.mkdir()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "callpulse"
    # Records the database it was given, then waits for its stdin to close (the test's stop).
    fake.write_text('#!/bin/sh\necho "$@" > "$CALLPULSE_DATA/args-$$"\nexec cat > /dev/null\n', encoding="utf-8")
    fake.chmod(0o755)
    started: list[subprocess.Popen[str]] = []
    yield data, started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


def _start(data: Path, started: list[subprocess.Popen[str]], slots: int = 8) -> subprocess.Popen[str]:
    script = _worker()["command"][-1].replace("$$", "$")
    script = script.replace(
        "for slot in 1 2 3 4 5 6 7 8;", "for slot in " + " ".join(map(str, range(1, slots + 1))) + ";"
    )
    env = {**os.environ, "CALLPULSE_DATA": str(data), "PATH": f"{data.parent / 'bin'}:{os.environ['PATH']}"}
    proc = subprocess.Popen(
        ["/bin/sh", "-c", script], env=env, stdin=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    started.append(proc)
    return proc


def _dbs(data: Path) -> list[str]:
    return sorted(p.read_text().split("--db ")[1].strip() for p in data.glob("args-*"))


def test_replicas_started_together_take_different_databases(replicas) -> None:
    data, started = replicas
    for _ in range(3):
        _start(data, started, slots=3)
    wait_until(lambda: len(list(data.glob("args-*"))) == 3, 20, "three replicas to start")
    assert _dbs(data) == [str(data / f"worker-{n}.duckdb") for n in (1, 2, 3)]
    # each replica names itself after its slot (route_by_queue: worker_partitions, logs)
    assert sorted(p.read_text().split("--worker-id ")[1].split()[0] for p in data.glob("args-*")) == [
        "worker-1",
        "worker-2",
        "worker-3",
    ]

    # All slots held: a fourth replica says so in one line and exits.
    fourth = _start(data, started, slots=3)
    assert fourth.wait(timeout=20) == 1
    assert fourth.stderr is not None and "no free worker slot" in fourth.stderr.read()

    # A stopped replica frees its slot (its lock dies with it); the next one takes it.
    second = next(p for p in started if p.poll() is None and "worker-2" in _args_of(data, p))
    assert second.stdin is not None
    second.stdin.close()
    second.wait(timeout=20)
    for f in data.glob("args-*"):
        f.unlink()
    _start(data, started, slots=3)
    wait_until(lambda: len(list(data.glob("args-*"))) == 1, 20, "the replacement to start")
    assert _dbs(data) == [str(data / "worker-2.duckdb")]


def _args_of(data: Path, proc: subprocess.Popen[str]) -> str:
    # The script execs callpulse, which keeps the shell's pid.
    path = data / f"args-{proc.pid}"
    return path.read_text() if path.exists() else ""
