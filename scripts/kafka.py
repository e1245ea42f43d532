"""Run a local single-node Kafka broker for development (backs `make kafka-up/-down`).

    python scripts/kafka.py up [--port 9092] [--dir DIR]   start detached, print bootstrap
    python scripts/kafka.py status [--dir DIR]              running? reachable?
    python scripts/kafka.py down [--dir DIR]                stop it (via the pid file)

The broker is the same one the tests use (devtools/kafka.py): KRaft, 127.0.0.1 only,
jars cached in ${CALLPULSE_CACHE:-~/.cache/callpulse}. Its data dir (default
<cache>/dev-kafka) survives `down`, so topics and messages are kept between runs;
delete the directory for a clean slate. Logs: <dir>/logs/server.log and kafka.out.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from devtools.kafka import KafkaBroker, cache_root, describe_cluster  # noqa: E402
from devtools.procs import ServiceError, free_port, port_open, wait_until  # noqa: E402

PID_FILE = "kafka.pid"
BOOTSTRAP_FILE = "bootstrap"


def default_dir() -> Path:
    return cache_root() / "dev-kafka"


def read_pid(data_dir: Path) -> int | None:
    """The pid in the pid file if that process is still our Kafka broker, else None."""
    try:
        pid = int((data_dir / PID_FILE).read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    config = str(data_dir / "server.properties").encode()
    return pid if b"kafka.Kafka" in cmdline and config in cmdline else None


def cmd_up(args: argparse.Namespace) -> int:
    data_dir: Path = args.dir.resolve()
    pid = read_pid(data_dir)
    if pid is not None:
        bootstrap = (data_dir / BOOTSTRAP_FILE).read_text().strip()
        print(f"kafka already running (pid {pid}) at {bootstrap}", file=sys.stderr)
        print(bootstrap)
        return 0
    if port_open(args.port):
        print(f"error: 127.0.0.1:{args.port} is already in use", file=sys.stderr)
        return 1
    broker = KafkaBroker(data_dir, port=args.port, controller_port=free_port())
    broker.start()  # returns once a client can fetch metadata; the JVM runs on detached
    assert broker.pid is not None
    (data_dir / PID_FILE).write_text(f"{broker.pid}\n")
    (data_dir / BOOTSTRAP_FILE).write_text(f"{broker.bootstrap}\n")
    print(
        f"kafka up in {broker.startup_seconds:.1f}s (pid {broker.pid}, data {data_dir})",
        file=sys.stderr,
    )
    print(broker.bootstrap)
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    data_dir: Path = args.dir.resolve()
    pid = read_pid(data_dir)
    if pid is None:
        print("kafka is not running", file=sys.stderr)
        (data_dir / PID_FILE).unlink(missing_ok=True)
        return 0
    os.killpg(pid, signal.SIGTERM)  # the broker leads its own process group
    try:
        wait_until(lambda: read_pid(data_dir) is None, args.timeout, f"kafka pid {pid} to exit")
    except TimeoutError:
        print(f"kafka did not stop in {args.timeout:.0f}s; sending SIGKILL", file=sys.stderr)
        os.killpg(pid, signal.SIGKILL)
        wait_until(lambda: read_pid(data_dir) is None, 10, f"kafka pid {pid} to die")
    (data_dir / PID_FILE).unlink(missing_ok=True)
    print(f"kafka stopped (pid {pid})", file=sys.stderr)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    data_dir: Path = args.dir.resolve()
    pid = read_pid(data_dir)
    if pid is None:
        print("kafka: not running")
        return 3
    bootstrap = (data_dir / BOOTSTRAP_FILE).read_text().strip()
    try:
        cluster = describe_cluster(bootstrap, timeout=5.0)
    except Exception as exc:  # noqa: BLE001 - report any client failure as "not reachable"
        print(f"kafka: running (pid {pid}) but {bootstrap} not reachable: {exc}")
        return 1
    print(f"kafka: running (pid {pid}) at {bootstrap}, cluster {cluster.get('cluster_id')}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, func in (("up", cmd_up), ("down", cmd_down), ("status", cmd_status)):
        p = sub.add_parser(name)
        p.add_argument("--dir", type=Path, default=default_dir(), help="broker data dir")
        p.set_defaults(func=func)
        if name == "up":
            p.add_argument("--port", type=int, default=9092, help="PLAINTEXT port")
        if name == "down":
            p.add_argument("--timeout", type=float, default=30.0, help="seconds before SIGKILL")
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except ServiceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
