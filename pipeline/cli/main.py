"""The `callpulse` command line. Thin: it reads config, builds an engine and
hands batches from a source to ``Engine.process``; all logic lives elsewhere."""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.live import Live

from metrics.kpi import breaches
from metrics.kpi.snapshot import take_snapshot
from pipeline.cli import alerts as alerts_cli
from pipeline.cli import analyst as analyst_cli
from pipeline.cli import board
from pipeline.cli import kafka as kafka_cli
from pipeline.cli.dashboards import register as register_dashboards
from pipeline.cli.output import error_console, fail, one_of, run_app
from pipeline.cli.progress import progress_bar
from pipeline.core import dbfile
from pipeline.core.config import Config, load_config, pii_key_from_env
from pipeline.core.engine import Engine, Totals
from pipeline.core.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE, not_a_directory
from pipeline.core.pii import local_demo_key
from pipeline.core.records import Parsed, RawBatch
from pipeline.core.store import listed_intervals
from pipeline.ingest.adapters.detect import detect_file
from pipeline.ingest.adapters.mapped import MappingError
from pipeline.ingest.sources import adapted, files
from pipeline.ops import parquet_store

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Real-time call-quality monitoring.")
console = error_console()
log = logging.getLogger("callpulse")
REPLAY_FORMATS = ("auto", *files.FORMATS, *adapted.ADAPTER_FORMATS)
KPI_FORMATS = ("table", "json")

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="callpulse.toml (default: ./callpulse.toml if present)")
]
DbOpt = Annotated[Path | None, typer.Option("--db", help="DuckDB file (default from config: data/callpulse.duckdb)")]


def _config(path: Path | None, db: Path | None) -> Config:
    return load_config(path).with_db(db)


def _fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    fail(console, message, code)


def _summary(totals: Totals, seconds: float) -> str:
    rate = totals.read / seconds if seconds > 0 else 0.0
    return (
        f"read {totals.read:,}  accepted {totals.accepted:,}  duplicates {totals.duplicates:,}  "
        f"dead-lettered {totals.dead_lettered:,}  in {seconds:.1f}s ({rate:,.0f} records/s)"
    )


@app.command()
def replay(
    paths: Annotated[list[str], typer.Argument(help="Files to replay (- for stdin)")],
    config: ConfigOpt = None,
    db: DbOpt = None,
    fmt: Annotated[
        str, typer.Option("--format", help="auto | jsonl | csv | parquet | asterisk | connect | mapped")
    ] = "auto",
    mapping: Annotated[
        str | None, typer.Option(help="Mapping for --format mapped: a file or a bundled name (anonymous_bank)")
    ] = None,
    follow_file: Annotated[
        bool, typer.Option("--follow", help="Keep reading a live file (asterisk queue_log), surviving rotation")
    ] = False,
    duration: Annotated[
        float, typer.Option(help="With --follow: stop after this many seconds (0: until interrupted)")
    ] = 0,
    batch_size: Annotated[int | None, typer.Option(help="Records per batch (default from config)")] = None,
) -> None:
    """Feed files through the pipeline; ends with accepted / duplicate / dead-lettered counts.

    Exits 1 when every record read was dead-lettered, 130 on Ctrl-C (after saying what
    was stored: each batch is stored whole or not at all)."""
    one_of("--format", fmt, REPLAY_FORMATS, console)
    cfg = _config(config, db)
    key = pii_key_from_env(required=True)
    assert key is not None
    size = batch_size or cfg.batch_size
    skipped: Counter[str] = Counter()
    options: dict[str, Any] = {"timezone": cfg.timezone, "mapping": mapping or "anonymous_bank", "stats": skipped}
    # Every input is checked before the database is opened: a refused input writes nothing.
    formats = [_input_format(path, fmt, mapping, follow_file) for path in paths]
    started = time.perf_counter()
    totals = Totals()  # the engine's, once it is open: what is stored so far
    with _ctrl_c_noted() as pressed:
        try:
            with Engine.open(cfg, key) as engine, progress_bar(console) as progress:
                totals = engine.totals
                breaches.attach(engine)
                parquet_store.attach_configured(engine)  # after breaches: closed ones are exported too
                task = progress.add_task("replay", total=None)
                for path, chosen in zip(paths, formats, strict=True):
                    batches = _batches(path, chosen, size, options, follow_file, duration)
                    # --follow reads on this thread: its source must see Ctrl-C itself
                    results = map(engine.process, batches) if follow_file else engine.process_stream(batches)
                    for _ in results:
                        progress.update(
                            task,
                            completed=totals.read,
                            description=f"{Path(path).name}: {totals.dead_lettered:,} dead-lettered",
                        )
                engine.drain()
        except BaseException as exc:
            if not isinstance(exc, KeyboardInterrupt) and not pressed.is_set():
                raise
            console.print(
                f"interrupted: stored before Ctrl-C: {_summary(totals, time.perf_counter() - started)}; "
                "run the same replay again to finish (what is stored is skipped as duplicates)"
            )
            raise typer.Exit(EXIT_INTERRUPTED) from None
    console.print(_summary(totals, time.perf_counter() - started))
    not_records = {k: v for k, v in skipped.items() if k.startswith("skipped")}
    if not_records:
        console.print(
            "not call records, left out by the adapter: "
            + ", ".join(f"{k.split(':', 1)[-1]} {v:,}" for k, v in sorted(not_records.items()))
        )
    if totals.read and totals.dead_lettered == totals.read:
        _fail(
            f"every record was dead-lettered ({totals.read:,}); nothing was stored: see why with "
            'callpulse sql "SELECT reason, count(*) FROM dead_letters GROUP BY reason"',
            EXIT_FAILED,
        )


@contextmanager
def _ctrl_c_noted() -> Iterator[threading.Event]:
    """Ctrl-C raises ``KeyboardInterrupt`` as usual and is also noted in the event
    yielded: DuckDB turns one that lands during a query into its own error."""
    pressed = threading.Event()

    def handler(signum: int, frame: object) -> None:
        pressed.set()
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield pressed
    finally:
        signal.signal(signal.SIGINT, previous)


def _input_format(path: str, fmt: str, mapping: str | None, follow_file: bool) -> str:
    """The format ``path`` is read in; refuses a missing file, a directory, and a file
    whose format can't be recognised (a CSV is never guessed to be the bank's export)."""
    if follow_file:
        not_a_directory(path, "a followed file")
        return "asterisk" if fmt == "auto" else fmt
    if path == "-":
        return "jsonl" if fmt == "auto" else fmt
    not_a_directory(path, "each input")
    if not Path(path).is_file():
        _fail(f"{path}: no such file")
    chosen = detect_file(path) if fmt == "auto" else fmt
    if chosen == "unknown":
        _fail(f"{path}: could not recognise the format from its first lines; pass --format")
    if chosen == "mapped":
        try:
            adapted.check_mapped_header(path, mapping or "anonymous_bank", guessed=fmt == "auto" and mapping is None)
        except MappingError as exc:
            _fail(str(exc))
    return chosen


def _batches(
    path: str, fmt: str, size: int, options: dict[str, Any], follow_file: bool, duration: float
) -> Iterator[RawBatch]:
    """The batches of one input: native files on the fast path, others through an adapter."""
    if follow_file:
        stop = threading.Event()
        if duration:
            threading.Timer(duration, stop.set).start()
        try:
            yield from adapted.followed_batches(path, fmt, options, stop)
        except KeyboardInterrupt:
            stop.set()
        return
    if fmt in files.FORMATS:
        yield from files.read_batches(path, size, fmt)
    else:
        try:
            yield from adapted.adapted_batches(path, fmt, size, options)
        except MappingError as exc:
            _fail(str(exc))


@app.command()
def simulate(
    out: Annotated[Path | None, typer.Option("--out", "-o", help="JSON-lines file (default: stdout)")] = None,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same day")] = 1,
    day: Annotated[str, typer.Option(help="First simulated day, YYYY-MM-DD")] = "2026-03-02",
    days: Annotated[int, typer.Option(help="Number of days")] = 1,
    scale: Annotated[float, typer.Option(help="Multiply call volumes")] = 1.0,
    timezone: Annotated[str, typer.Option(help="Site time zone of the simulated centre")] = "Asia/Shanghai",
    quality: Annotated[bool, typer.Option("--quality", help="Add each answered call's media quality")] = False,
    to: Annotated[str, typer.Option("--to", help="file (--out, or stdout) | kafka (the configured topics)")] = "file",
    config: ConfigOpt = None,
    bootstrap: kafka_cli.BootstrapOpt = None,
    topic_prefix: kafka_cli.PrefixOpt = None,
) -> None:
    """Write a realistic simulated call-centre day as JSON lines, or send it to Kafka."""
    from pipeline.ingest.sources.simulator import SimConfig, write_jsonl
    from pipeline.ingest.sources.simulator import simulate as run

    if out is not None:
        not_a_directory(out, "--out")
    sim = SimConfig(seed=seed, day=date.fromisoformat(day), days=days, scale=scale, tz=timezone, quality=quality)
    if to == "kafka":
        kafka_cli.produce_simulated(run(sim), kafka_cli.kafka_config(config, None, bootstrap, None, topic_prefix))
        return
    if to != "file":
        _fail(f"--to: must be file or kafka, got {to!r}")
    count = write_jsonl(run(sim), out)
    console.print(f"wrote {count:,} records" + (f" to {out}" if out else ""))


@app.command()
def kpis(
    config: ConfigOpt = None,
    db: DbOpt = None,
    fmt: Annotated[str, typer.Option("--format", help="table | json")] = "table",
    window: Annotated[str, typer.Option(help="Window shown in the table")] = "15m",
) -> None:
    """Current KPIs per queue: rolling windows, the latest interval, live state."""
    one_of("--format", fmt, KPI_FORMATS, console)
    cfg = _config(config, db)
    one_of("--window", window, [name for name, _ in cfg.windows], console)
    if not cfg.db.exists():
        _fail(f"{cfg.db}: no database yet (run `callpulse replay` or `callpulse demo` first)")
    listed = 0
    try:
        con = dbfile.open_callpulse(cfg.db, read_only=True)
        listed = listed_intervals(con)  # what a killed pipeline left to recompute
    except dbfile.DatabaseInUse:
        # A running pipeline holds the file: read the analysts' copy it keeps beside it.
        from pipeline.ops.analyst_copy import AnalystError, open_copy

        try:
            opened = open_copy(cfg)
        except AnalystError as exc:
            _fail(f"{cfg.db}: in use by a running pipeline and no analysts' copy to read ({exc})")
        con = opened.con
        console.print(f"{cfg.db} is in use by a running pipeline; reading {opened.freshness_line()}")
    if listed:
        console.print(
            f"{cfg.db}: the pipeline stopped before recomputing {listed:,} interval aggregates; the latest "
            "interval and the repeat-contact rates may miss its last seconds of events until a pipeline opens "
            "this database again"
        )
    try:
        snap = take_snapshot(con, cfg.windows)
    finally:
        con.close()
    if fmt == "json":
        sys.stdout.write(json.dumps(snap.to_json(), indent=2) + "\n")
    else:
        Console().print(board.render(snap, window, tz=cfg.timezone))


def paced(records: Iterable[dict[str, Any]], speed: float, batch_event_s: float) -> Iterator[list[dict[str, Any]]]:
    """Group records into batches of ``batch_event_s`` event seconds, released in
    event time at ``speed`` times real time (0: as fast as possible)."""
    first_event: float | None = None
    wall_start = time.monotonic()
    batch: list[dict[str, Any]] = []
    batch_end = 0.0
    for record in records:
        t = _event_time(record)
        if first_event is None:
            first_event, batch_end = t, t + batch_event_s
        if t >= batch_end and batch:
            if speed > 0:
                delay = wall_start + (batch_end - first_event) / speed - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            yield batch
            batch = []
            while t >= batch_end:
                batch_end += batch_event_s
        batch.append(record)
    if batch:
        yield batch


def _event_time(record: dict[str, Any]) -> float:
    at = record["at"]
    return float(at) if isinstance(at, (int, float)) else datetime.fromisoformat(at).timestamp()


@app.command()
def demo(
    config: ConfigOpt = None,
    db: DbOpt = None,
    duration: Annotated[float, typer.Option(help="Stop after this many seconds (0: run the whole simulation)")] = 0,
    speed: Annotated[
        float, typer.Option(help="Event time per wall second (1 = real time, 0 = as fast as possible)")
    ] = 60,
    seed: Annotated[int, typer.Option(help="Simulator seed")] = 1,
    max_events: Annotated[int, typer.Option(help="Stop after this many events (0: no limit)")] = 0,
    serve: Annotated[
        bool, typer.Option(help="Serve /metrics and the wallboard page (exporter host/port from config)")
    ] = True,
    quality: Annotated[bool, typer.Option("--quality", help="Simulate each answered call's media quality")] = False,
) -> None:
    """Simulator → pipeline → DuckDB with a live terminal wallboard."""
    from pipeline.ingest.sources.simulator import SimConfig
    from pipeline.ingest.sources.simulator import simulate as run

    cfg = _config(config, db)
    sim = SimConfig(seed=seed, quality=quality)
    if config is None and cfg.timezone == "UTC":
        cfg = replace(cfg, timezone=sim.tz)  # the simulated centre's own time zone
    key = pii_key_from_env(required=False)
    if key is None:
        key, created = local_demo_key(cfg.db.parent)
        console.print(
            f"demo: caller numbers are hashed with a local demo key kept in {cfg.db.parent}/"
            f" ({'created now' if created else 'reused'}); set CALLPULSE_PII_KEY outside the demo."
        )
    batch_event_s = max(1.0, speed * 0.5) if speed > 0 else 300.0
    started = time.monotonic()
    last_draw = 0.0
    events = 0
    with Engine.open(cfg, key) as engine:
        from pipeline.cli.services import start_services  # the boards and /metrics, for this command only

        services = start_services(engine, cfg, serve=serve)
        if services.server is not None:
            console.print(f"serving {services.server.url}/ (wallboard) and {services.server.url}/metrics")
        try:
            board_console = Console()
            with Live(console=board_console, refresh_per_second=2, transient=False) as live:
                for records in paced(run(sim), speed, batch_event_s):
                    items = [Parsed(f"sim:{events + i}", json.dumps(r), r) for i, r in enumerate(records)]
                    events += len(records)
                    engine.process(RawBatch.from_items("simulator", items))
                    now = time.monotonic()
                    if now - last_draw >= 0.5:
                        snap = services.published.get("snapshot")
                        live.update(board.render(snap, "15m", _summary(engine.totals, now - started), cfg.timezone))
                        last_draw = now
                    if (duration and now - started >= duration) or (max_events and events >= max_events):
                        break
                services.refresher.refresh_now()
                live.update(
                    board.render(
                        services.published.get("snapshot"),
                        "15m",
                        _summary(engine.totals, time.monotonic() - started),
                        cfg.timezone,
                    )
                )
            if not board_console.is_terminal:
                board_console.line()  # off a terminal, Live leaves its last frame's last line open
        finally:
            services.close()
    console.print(f"demo done: {_summary(engine.totals, time.monotonic() - started)}; database {cfg.db}")


# The feature CLIs register their commands after the core ones.
kafka_cli.register(app)
register_dashboards(app)
analyst_cli.register(app)
alerts_cli.register(app)


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    run_app(app, console)


if __name__ == "__main__":
    main()
