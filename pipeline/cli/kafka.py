"""`callpulse worker` and `callpulse produce`: the Kafka commands, registered on the main CLI.

Environment overrides (read here, once, on top of ``[kafka]`` in the config):
``CALLPULSE_KAFKA_BOOTSTRAP`` (host:port[,host:port]) and ``CALLPULSE_KAFKA_GROUP``.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import Progress, TaskID

from pipeline.cli.output import error_console
from pipeline.cli.progress import progress_bar
from pipeline.core.config import Config, for_worker, load_config, pii_key_from_env
from pipeline.core.errors import EXIT_INTERRUPTED, not_a_directory

log = logging.getLogger("callpulse.worker")
console = error_console()

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="callpulse.toml (default: ./callpulse.toml if present)")
]
DbOpt = Annotated[Path | None, typer.Option("--db", help="DuckDB file (default from config: data/callpulse.duckdb)")]
BootstrapOpt = Annotated[
    str | None, typer.Option("--bootstrap", help="Kafka host:port (default: config, CALLPULSE_KAFKA_BOOTSTRAP)")
]
PrefixOpt = Annotated[
    str | None, typer.Option("--topic-prefix", help="Topic name prefix (default from config: callpulse.)")
]

BOOTSTRAP_ENV = "CALLPULSE_KAFKA_BOOTSTRAP"
GROUP_ENV = "CALLPULSE_KAFKA_GROUP"


def kafka_config(
    path: Path | None,
    db: Path | None,
    bootstrap: str | None = None,
    group: str | None = None,
    prefix: str | None = None,
) -> Config:
    """The config with the Kafka overrides applied: options, then environment, then file."""
    cfg = load_config(path).with_db(db)
    k = cfg.kafka
    k = replace(
        k,
        bootstrap=bootstrap or os.environ.get(BOOTSTRAP_ENV) or k.bootstrap,
        group=group or os.environ.get(GROUP_ENV) or k.group,
        topic_prefix=k.topic_prefix if prefix is None else prefix,
    )
    return replace(cfg, kafka=k)


def worker(
    config: ConfigOpt = None,
    db: DbOpt = None,
    bootstrap: BootstrapOpt = None,
    group: Annotated[str | None, typer.Option(help="Consumer group (default: config, CALLPULSE_KAFKA_GROUP)")] = None,
    topic_prefix: PrefixOpt = None,
    duration: Annotated[float, typer.Option(help="Stop after this many seconds (0: until interrupted)")] = 0,
    max_events: Annotated[int, typer.Option(help="Stop after this many Kafka messages (0: no limit)")] = 0,
    serve: Annotated[
        bool, typer.Option(help="Serve /metrics and the wallboard (exporter host/port from config)")
    ] = True,
    session_timeout: Annotated[float, typer.Option(help="Consumer-group session timeout, seconds")] = 10.0,
    worker_id: Annotated[
        str | None,
        typer.Option(help="This worker's name (default: [kafka] worker_id, else the host's); {worker} in --db"),
    ] = None,
) -> None:
    """Consume the Kafka topics into DuckDB (faust-streaming), exactly once in effect."""
    from pipeline.cli.services import start_services
    from pipeline.ingest.worker import KafkaWorker, WorkerOptions, WorkerSummary

    cfg = for_worker(kafka_config(config, db, bootstrap, group, topic_prefix), worker_id)
    key = pii_key_from_env(required=True)
    assert key is not None
    options = WorkerOptions(duration_s=duration, max_events=max_events, serve=serve, session_timeout_s=session_timeout)
    w = KafkaWorker(cfg, key, options, start_services=start_services, on_broker_retry=_say_retry(cfg))
    console.print(
        f"worker: {cfg.kafka.bootstrap} group {cfg.kafka.group} topics {', '.join(w.topics.values())} → {cfg.db}"
        + (f" (worker id {cfg.kafka.worker_id}, queues routed)" if cfg.kafka.route_by_queue else "")
    )
    last = [0.0, -1.0]

    def progress(s: WorkerSummary) -> None:
        # A line when the count moved, at most every half second; the worker also calls
        # this when idle, so the last count is printed too (operators and tests read it).
        now = time.monotonic()
        if s.messages != last[1] and now - last[0] >= 0.5:
            last[0], last[1] = now, s.messages
            console.print(f"progress: {s.messages} messages stored in {s.batches} batches")

    try:
        summary = w.run(progress)
    except KeyboardInterrupt:  # before faust took over the signals (waiting for the broker)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    totals = w.engine.totals if w.engine is not None else None
    rate = summary.messages / summary.seconds if summary.seconds else 0.0
    detail = (
        f"accepted {totals.accepted:,}  duplicates {totals.duplicates:,}  dead-lettered {totals.dead_lettered:,}  "
        if totals
        else ""
    )
    console.print(
        f"worker done: messages {summary.messages:,}  {detail}redelivered-skipped {summary.skipped:,}  "
        f"batches {summary.batches:,}  sessions {summary.sessions}  in {summary.seconds:.1f}s "
        f"({rate:,.0f} messages/s)"
    )
    _exit_despite_lingering_threads()


def _say_retry(cfg: Config) -> Callable[[int, str, float], None]:
    """One line per failed attempt to reach the broker."""

    def say(attempt: int, reason: str, delay: float) -> None:
        console.print(
            f"kafka: {cfg.kafka.bootstrap} not reachable (attempt {attempt}: {reason}); retrying in {delay:.0f} s",
        )

    return say


def _exit_despite_lingering_threads(grace_s: float = 5.0) -> None:
    """Exit now if a library thread outlives the run.

    After a broker outage faust/aiokafka can leave a non-daemon thread behind, which
    would hold the process for ever after ``worker done``. Everything is stored and the
    engine is closed by now, so waiting for it protects nothing.
    """
    deadline = time.monotonic() + grace_s
    for t in threading.enumerate():
        if t is not threading.main_thread() and not t.daemon:
            t.join(max(0.0, deadline - time.monotonic()))
    lingering = [t.name for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon]
    if lingering:
        log.warning("threads still running after the worker stopped: %s; exiting anyway", ", ".join(lingering))
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


def produce(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="JSON-lines files (or with --queue-log, Asterisk queue_log files), one message per line"),
    ] = None,
    config: ConfigOpt = None,
    bootstrap: BootstrapOpt = None,
    topic_prefix: PrefixOpt = None,
    queue_log: Annotated[
        bool,
        typer.Option(
            "--queue-log",
            help="The files are Asterisk queue_log files: send their lines as they are to <prefix>queue_log, "
            "keyed by --server (give one server's rotated files oldest first)",
        ),
    ] = False,
    server: Annotated[
        str | None,
        typer.Option(
            "--server", help="--queue-log: the Asterisk server's name, the message key (default: this host's name)"
        ),
    ] = None,
    simulate: Annotated[bool, typer.Option("--simulate", help="Produce a simulated day instead of files")] = False,
    seed: Annotated[int, typer.Option(help="--simulate: random seed")] = 1,
    scale: Annotated[float, typer.Option(help="--simulate: multiply call volumes")] = 1.0,
    partitions: Annotated[int, typer.Option(help="Partitions for topics that don't exist yet")] = 3,
) -> None:
    """Send records to Kafka: calls/CDRs keyed by queue, agents by agent_id, qa by call_id.

    Lines that are not JSON objects with a known ``type`` go to the calls topic as they
    are, so the worker dead-letters them (nothing is silently dropped here). With
    ``--queue-log`` every non-blank line goes to the queue_log topic unchanged, keyed by
    the server name, so one server's log keeps its order on one partition.
    """
    from pipeline.ingest.sources import kafka

    cfg = kafka_config(config, None, bootstrap, None, topic_prefix)
    if not paths and not simulate:
        console.print("[bold red]error:[/] give files to produce or --simulate")
        raise typer.Exit(2)
    if queue_log and not paths:
        console.print("[bold red]error:[/] --queue-log needs queue_log files")
        raise typer.Exit(2)
    if server is not None and not queue_log:
        console.print("[bold red]error:[/] --server is for --queue-log")
        raise typer.Exit(2)
    key = (server if server is not None else socket.gethostname()).strip()
    if queue_log and not key:
        console.print("[bold red]error:[/] --server: give a non-empty name")
        raise typer.Exit(2)
    for path in paths or []:
        not_a_directory(path, "each file to produce")
        if not path.is_file():
            console.print(f"[bold red]error:[/] {path}: no such file")
            raise typer.Exit(2)
    kafka.wait_for_broker(cfg.kafka, _say_retry(cfg))
    created = kafka.ensure_topics(cfg.kafka, partitions)
    if created:
        console.print(f"created topics {', '.join(created)} ({partitions} partitions)")
    started = time.perf_counter()
    sent = 0
    with progress_bar(console) as progress:
        if simulate:
            from pipeline.ingest.sources.simulator import SimConfig
            from pipeline.ingest.sources.simulator import simulate as run

            task = progress.add_task("simulated day", total=None)
            sent = kafka.produce_records(
                run(SimConfig(seed=seed, scale=scale)), cfg.kafka, lambda n: progress.update(task, completed=n)
            )
        for path in paths or []:
            with path.open("rb") as fh:
                total = sum(1 for line in fh if line.strip())
            task = progress.add_task(path.name, total=total)
            with path.open("rb") as fh:
                if queue_log:
                    sent += kafka.produce_queue_log(fh, cfg.kafka, key, _updater(progress, task))
                else:
                    sent += kafka.produce_lines(fh, cfg.kafka, _updater(progress, task))
    _produced(sent, started, cfg.kafka.bootstrap)


def _updater(progress: Progress, task: TaskID) -> Callable[[int], None]:
    return lambda n: progress.update(task, completed=n)


def register(app: typer.Typer) -> None:
    """Add ``worker`` and ``produce`` to the ``callpulse`` command."""
    app.command()(worker)
    app.command()(produce)


def produce_simulated(records: Iterable[dict[str, Any]], cfg: Config, partitions: int = 3) -> int:
    """``callpulse simulate --to kafka``: send simulated records to the configured topics."""
    from pipeline.ingest.sources import kafka

    kafka.wait_for_broker(cfg.kafka, _say_retry(cfg))
    created = kafka.ensure_topics(cfg.kafka, partitions)
    if created:
        console.print(f"created topics {', '.join(created)} ({partitions} partitions)")
    started = time.perf_counter()
    with progress_bar(console) as progress:
        task = progress.add_task("simulated records", total=None)
        sent = kafka.produce_records(records, cfg.kafka, lambda n: progress.update(task, completed=n))
    _produced(sent, started, cfg.kafka.bootstrap)
    return sent


def _produced(sent: int, started: float, bootstrap: str) -> None:
    seconds = time.perf_counter() - started
    console.print(
        f"produced {sent:,} messages to {bootstrap} in {seconds:.1f}s ({sent / seconds if seconds else 0:,.0f}/s)"
    )
