"""`callpulse sql | report | backup | restore | retention`: the analysts' and operators' commands.

Thin: they open the analysts' read-only copy (pipeline/ops/analyst_copy.py) or copy a
database (pipeline/ops/backup.py) and format what the pure builders return
(metrics/reports/tables.py, metrics/reports/html.py).
"""

from __future__ import annotations

import io
import json
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, NoReturn
from zoneinfo import ZoneInfo

import duckdb
import polars as pl
import typer
from rich.console import Console
from rich.table import Table

from metrics.reports import html as report_html
from metrics.reports import tables as reports
from pipeline.cli.output import error_console, fail, run_app
from pipeline.core import sqlfiles
from pipeline.core.config import Config, load_config
from pipeline.core.errors import EXIT_USAGE, OperatorError, first_line, not_a_directory
from pipeline.core.store import Store, listed_intervals
from pipeline.ops import analyst_copy as analyst
from pipeline.ops import backup, parquet_store, retention

err = error_console()
ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="callpulse.toml (default: ./callpulse.toml if present)"),
]
DbOpt = Annotated[
    Path | None,
    typer.Option("--db", help="Pipeline DuckDB file (default from config: data/callpulse.duckdb)"),
]
FORMATS_SQL = ("table", "csv", "json")
FORMATS_REPORT = ("table", "csv", "parquet", "html")
# What the Parquet store's interval sums can answer (agents' states, calls and cases live
# in each worker's own database).
PARQUET_REPORTS = ("daily", "queues", "agents")


def _fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    fail(err, message, code)


def _open(cfg: Config) -> analyst.Opened:
    try:
        return analyst.open_copy(cfg)
    except OperatorError as exc:
        _fail(str(exc))
        raise  # unreachable


def _open_parquet(root: Path, cfg: Config) -> analyst.Opened:
    """The views over every worker's Parquet files, read-only to the analyst like the copy."""
    try:
        con = parquet_store.open_views(root, cfg.timezone)
    except parquet_store.ParquetStoreError as exc:
        _fail(str(exc))
        raise  # unreachable
    watermark = parquet_store.newest_version(con, root)
    sqlfiles.run(con, "analyst/parquet_session", timezone=cfg.timezone, root=str(root.resolve()))
    return analyst.Opened(con, root, None, watermark, pipeline_running=False)


# -- sql ---------------------------------------------------------------------


def run_query(con: duckdb.DuckDBPyConnection, query: str) -> pl.DataFrame | None:
    """Run one statement read-only; a frame for queries, None for statements without rows."""
    rel = con.sql(query)
    if rel is None:
        return None
    out = pl.from_arrow(rel.to_arrow_table())
    assert isinstance(out, pl.DataFrame)
    return out


def _print_frame(frame: pl.DataFrame, fmt: str, out: Any) -> None:
    if fmt == "csv":
        out.write(_csv_safe(frame).write_csv())
    elif fmt == "json":
        out.write(json.dumps(frame.to_dicts(), default=_json_default, indent=1) + "\n")
    else:
        table = Table(show_lines=False)
        for name in frame.columns:
            table.add_column(name, justify="right" if frame.schema[name].is_numeric() else "left")
        for row in frame.iter_rows():
            table.add_row(*["NULL" if v is None else _cell(v) for v in row])
        Console(file=out, width=None if getattr(out, "isatty", lambda: False)() else 400).print(table)
        err.print(f"{frame.height:,} row{'s' if frame.height != 1 else ''}", highlight=False)


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, datetime):
        return v.isoformat(sep=" ")
    return str(v)


def _json_default(v: Any) -> Any:
    if isinstance(v, (datetime, date)):
        return v.isoformat()
    if isinstance(v, timedelta):
        return v.total_seconds()
    return str(v)


def _csv_safe(frame: pl.DataFrame) -> pl.DataFrame:
    nested = [c for c, t in frame.schema.items() if t.is_nested()]
    return (
        frame.with_columns([pl.col(c).map_elements(str, return_dtype=pl.String) for c in nested]) if nested else frame
    )


def _execute(opened: analyst.Opened, query: str, fmt: str) -> bool:
    """Run one statement and print it; False (with a clear message) when it fails."""
    try:
        frame = run_query(opened.con, query)
    except duckdb.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        if analyst.refused_write(exc):
            err.print(
                "[bold red]refused:[/] the analysts' database is a read-only copy; the pipeline is its only "
                f"writer (copy results out with --format csv > file). ({first})",
                highlight=False,
            )
        else:
            err.print(f"[bold red]error:[/] {first}", highlight=False)
        return False
    if frame is not None:
        _print_frame(frame, fmt, sys.stdout)
    return True


def _statements(lines: Any) -> Any:
    """Statements from lines: each ends at a line ending with ';' (or at the end)."""
    buf: list[str] = []
    for line in lines:
        if not buf and line.strip() in ("", ".quit", ".exit", "\\q", "exit", "quit"):
            if line.strip():
                return
            continue
        buf.append(line.rstrip("\n"))
        if line.rstrip().endswith(";"):
            yield "\n".join(buf)
            buf = []
    if any(b.strip() for b in buf):
        yield "\n".join(buf)


def _prompt_lines() -> Any:
    while True:
        try:
            yield input("callpulse> ")
        except EOFError:
            return


def sql(
    query: Annotated[
        str | None,
        typer.Argument(help="SQL to run; none: an interactive prompt (or statements from stdin)"),
    ] = None,
    config: ConfigOpt = None,
    db: DbOpt = None,
    fmt: Annotated[str, typer.Option("--format", help="table | csv | json")] = "table",
    parquet: Annotated[
        Path | None,
        typer.Option(
            "--parquet",
            help="Query every worker's finished rows in this Parquet store (the workers' [analyst] parquet) "
            "instead of one database's copy",
        ),
    ] = None,
) -> None:
    """Query the analysts' read-only copy (the pipeline keeps writing its own file), or with
    --parquet the finished rows of every worker."""
    if fmt not in FORMATS_SQL:
        _fail(f"--format: expected one of {', '.join(FORMATS_SQL)}, got {fmt!r}")
    cfg = load_config(config).with_db(db)
    opened = _open(cfg) if parquet is None else _open_parquet(parquet, cfg)
    try:
        err.print(opened.freshness_line() if parquet is None else _parquet_line(opened), highlight=False)
        if query is not None:
            ok = _execute(opened, query, fmt)
        else:
            ok = True
            source = _prompt_lines() if sys.stdin.isatty() else sys.stdin
            for statement in _statements(source):
                ok = _execute(opened, statement, fmt) and ok
    finally:
        opened.con.close()
    if not ok:
        raise typer.Exit(1)


def _parquet_line(opened: analyst.Opened) -> str:
    wm = opened.watermark.isoformat() if opened.watermark else "no rows"
    return f"Parquet store {opened.path}: finished rows of every worker, newest exported at watermark {wm}"


# -- compact -----------------------------------------------------------------


def compact(
    day: Annotated[str, typer.Argument(help="The site-local day to compact (YYYY-MM-DD)")],
    parquet: Annotated[
        Path | None, typer.Option("--parquet", help="The Parquet store (default: [analyst] parquet)")
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Merge each worker's Parquet files of one day into one file per table and worker."""
    root = parquet or load_config(config).analyst.parquet
    if root is None:
        _fail("no Parquet store: set [analyst] parquet in the config or pass --parquet DIR")
        raise  # unreachable
    if not root.is_dir():
        _fail(f"Parquet store {root} is not a directory")
    try:
        merged = parquet_store.compact_day(root, day)
    except (parquet_store.ParquetStoreError, duckdb.Error, OSError) as exc:
        _fail(f"compact {day}: {exc}")
        raise  # unreachable
    for m in merged:
        err.print(f"{m.path.relative_to(root)}: {m.replaced} files merged", highlight=False)
    replaced = sum(m.replaced for m in merged)
    err.print(f"compacted {day}: {len(merged)} merged files, {replaced} replaced", highlight=False)


# -- report ------------------------------------------------------------------


def _local_bound(value: str, tz: str, what: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        _fail(f"{what}: expected a date (YYYY-MM-DD) or a date and time, got {value!r}")
        raise
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=ZoneInfo(tz))
    return parsed.astimezone(UTC)


def period(start: str | None, end: str | None, tz: str, watermark: datetime | None) -> tuple[datetime, datetime]:
    """[from, to) in UTC; dates are local midnights; to defaults to from + 1 day, from to the watermark's day."""
    zone = ZoneInfo(tz)
    if start is None:
        anchor = (watermark or datetime.now(UTC)).astimezone(zone).date()
        start = anchor.isoformat()
    lo = _local_bound(start, tz, "--from")
    if end is None:
        local = lo.astimezone(zone)
        day = (local.date() + timedelta(days=1)).isoformat()
        hi = _local_bound(day, tz, "--to")
    else:
        hi = _local_bound(end, tz, "--to")
    if hi <= lo:
        _fail(f"--to must be after --from ({end} <= {start})")
    return lo, hi


def build(
    con: duckdb.DuckDBPyConnection,
    kind: str,
    lo: datetime,
    hi: datetime,
    queue: str | None,
    tz: str,
) -> pl.DataFrame:
    """The report frame of ``kind`` for [lo, hi)."""
    p = {"lo": lo, "hi": hi, "queue": queue}
    if kind == "interval":
        sums = sqlfiles.frame(con, "reports/queue_intervals", **p)
        staffing = reports.interval_staffing(
            sums,
            sqlfiles.frame(con, "reports/queue_interval_patience", **p),
            sqlfiles.frame(con, "reports/queue_interval_staffed", **p),
            sqlfiles.frame(con, "kpi/queue_targets"),
        )
        return reports.interval_report(sums, tz, staffing)
    if kind == "daily":
        return reports.daily_report(sqlfiles.frame(con, "reports/queue_intervals", **p), tz)
    if kind == "queues":
        return reports.queues_report(sqlfiles.frame(con, "reports/queue_intervals", **p))
    if kind == "agents":
        return reports.agents_report(sqlfiles.frame(con, "reports/agent_intervals", **p))
    if kind == "cases":
        return reports.cases_report(sqlfiles.frame(con, "reports/cases", **p))
    if kind in reports.QUALITY_BY:
        return reports.quality_report(sqlfiles.frame(con, "reports/call_quality", **p), reports.QUALITY_BY[kind])
    raise ValueError(kind)


def html_report(
    con: duckdb.DuckDBPyConnection,
    kind: str,
    main: pl.DataFrame,
    lo: datetime,
    hi: datetime,
    queue: str | None,
    tz: str,
    meta: str,
) -> str:
    p = {"lo": lo, "hi": hi, "queue": queue}
    sums = sqlfiles.frame(con, "reports/queue_intervals", **p)
    calls = sqlfiles.frame(con, "reports/calls", **p)
    agents = reports.agents_report(sqlfiles.frame(con, "reports/agent_intervals", **p))
    target = sqlfiles.rows(con, "reports/service_level_target")[0][0]
    title = f"callpulse {kind} report" + (f" — queue {queue}" if queue else "")
    return report_html.render(
        title,
        meta,
        kind,
        main,
        reports.centre_by_interval(sums, tz),
        reports.abandon_curve(calls),
        reports.aht_distribution(calls),
        agents,
        target,
    )


def report(
    kind: Annotated[str, typer.Argument(help="interval | daily | agents | queues | cases | quality | quality-agents")],
    start: Annotated[
        str | None,
        typer.Option("--from", help="Start (site-local date or date-time; default: the watermark's day)"),
    ] = None,
    end: Annotated[str | None, typer.Option("--to", help="End, exclusive (default: --from plus one day)")] = None,
    queue: Annotated[str | None, typer.Option("--queue", help="Only this queue")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table | csv | parquet | html")] = "table",
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write here (parquet needs it)")] = None,
    config: ConfigOpt = None,
    db: DbOpt = None,
    parquet: Annotated[
        Path | None,
        typer.Option(
            "--parquet",
            help=f"Report on every worker's finished rows in this Parquet store ({', '.join(PARQUET_REPORTS)})",
        ),
    ] = None,
) -> None:
    """KPI reports with polars over the analysts' copy (or with --parquet every worker's
    finished intervals), in the site's time zone."""
    if kind not in reports.KINDS:
        _fail(f"report kind: expected one of {', '.join(reports.KINDS)}, got {kind!r}")
    if fmt not in FORMATS_REPORT:
        _fail(f"--format: expected one of {', '.join(FORMATS_REPORT)}, got {fmt!r}")
    if fmt == "parquet" and out is None:
        _fail("--format parquet needs --out FILE")
    if out is not None:
        not_a_directory(out, "--out")
    if parquet is not None and (kind not in PARQUET_REPORTS or fmt == "html"):
        _fail(
            f"report {kind} --format {fmt} needs one database's copy (agents' states, calls, cases): "
            f"with --parquet use {' | '.join(PARQUET_REPORTS)} and table, csv or parquet"
        )
    cfg = load_config(config).with_db(db)
    opened = _open(cfg) if parquet is None else _open_parquet(parquet, cfg)
    tz = cfg.timezone
    try:
        lo, hi = period(start, end, tz, opened.watermark)
        frame = build(opened.con, kind, lo, hi, queue, tz)
        zone = ZoneInfo(tz)
        fresh = opened.freshness_line() if parquet is None else _parquet_line(opened)
        meta = f"{lo.astimezone(zone).isoformat()} to {hi.astimezone(zone).isoformat()} ({tz}); {fresh}"
        err.print(meta, highlight=False)
        if fmt == "html":
            text = html_report(opened.con, kind, frame, lo, hi, queue, tz, meta)
            _write_text(text, out)
        elif fmt == "parquet":
            assert out is not None
            frame.write_parquet(out)
        elif fmt == "csv":
            _write_text(_csv_safe(frame).write_csv(), out)
        else:
            if out:
                buf = io.StringIO()
                _print_frame(frame, "table", buf)
                out.write_text(buf.getvalue(), encoding="utf-8")
            else:
                _print_frame(frame, "table", sys.stdout)
    finally:
        opened.con.close()
    if out:
        err.print(f"wrote {out}", highlight=False)


def _write_text(text: str, out: Path | None) -> None:
    if out is None:
        sys.stdout.write(text)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")


# -- backup / restore / retention -----------------------------------------------


def backup_cmd(
    dest: Annotated[Path, typer.Argument(help="Backup file to write (a DuckDB database)")],
    config: ConfigOpt = None,
    db: DbOpt = None,
    wait: Annotated[
        float, typer.Option(help="Seconds to wait for a running pipeline to refresh the analysts' copy")
    ] = 30.0,
    force: Annotated[bool, typer.Option("--force", help="Overwrite DEST if it exists")] = False,
) -> None:
    """A consistent copy of the database, also while the pipeline runs."""
    cfg = load_config(config).with_db(db)
    not_a_directory(dest, "the backup")
    not_a_directory(cfg.db, "the database (--db)")
    if dest.exists() and not force:
        _fail(f"{dest}: exists; use --force to overwrite it")
    if not cfg.db.exists():
        _fail(f"{cfg.db}: no database to back up")
    try:
        try:
            info = backup.copy_file(cfg.db, dest, kind="backup")
            how = "pipeline stopped: copied the database"
        except backup.CopyError as exc:
            if not exc.in_use:
                raise
            snap, fresh = analyst.request_backup_copy(cfg, wait)
            if not snap.exists():
                _fail(f"the pipeline is running but wrote no analysts' copy to back up ({snap})")
            info = backup.copy_file(snap, dest, kind="backup")
            how = (
                "pipeline running: copied the analysts' copy it made on request"
                if fresh
                else f"pipeline running but idle: copied its latest analysts' copy ({snap.name})"
            )
    except backup.CopyError as exc:
        _fail(str(exc))
        raise
    _copied(f"backup {dest}", info, f" ({how})")


def restore_cmd(
    src: Annotated[Path, typer.Argument(help="A backup made by `callpulse backup`")],
    dest_db: Annotated[Path, typer.Argument(help="Database file to create")],
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing database at DEST_DB")] = False,
) -> None:
    """Restore a backup into a database file the pipeline can run on (never overwrites without --force)."""
    try:
        info = backup.restore(src, dest_db, force=force)
    except backup.CopyError as exc:
        _fail(str(exc))
        raise
    _copied(f"restored {src} into {dest_db}", info)


def _copied(what: str, info: backup.CopyInfo, note: str = "") -> None:
    """The one line a finished backup or restore prints: what was copied, how much, up to when."""
    wm = info.watermark.isoformat() if info.watermark else "no events"
    err.print(f"{what}: {info.tables} tables, data up to {wm}{note}", highlight=False)


def retention_cmd(
    days: Annotated[
        int | None,
        typer.Option(help="Keep raw events this many days (default from analyst.retention_days in the config)"),
    ] = None,
    config: ConfigOpt = None,
    db: DbOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only count what would be deleted")] = False,
) -> None:
    """Delete raw events older than N days from a stopped pipeline's database (aggregates stay)."""
    cfg = load_config(config).with_db(db)
    n = days if days is not None else cfg.analyst.retention_days
    if n is None:
        _fail("no retention configured: pass --days or set analyst.retention_days in callpulse.toml")
        return
    if n < 1:
        _fail(f"--days: must be at least 1, got {n}")
    try:
        con = duckdb.connect(str(cfg.db))
    except duckdb.IOException:
        _fail(f"{cfg.db}: in use; a running pipeline applies analyst.retention_days itself")
        raise
    try:
        # A pipeline killed between a batch and its recompute left intervals listed: their
        # recompute may need the events about to go, so it runs first (a dry run only says so).
        listed = listed_intervals(con) if dry_run else Store.finish_listed(con, cfg)
        res = retention.apply(con, n, datetime.now(UTC), dry_run=dry_run)
    except retention.IntervalsListed as exc:
        _fail(f"{cfg.db}: {exc}")
    except duckdb.Error as exc:
        _fail(f"{cfg.db}: retention failed, nothing deleted ({first_line(exc)})")
    finally:
        con.close()
    if listed:
        verb = "would recompute" if dry_run else "recomputed"
        err.print(f"{verb} first: {listed:,} interval aggregates a stopped pipeline left listed", highlight=False)
    verb = "would delete" if dry_run else "deleted"
    detail = ", ".join(f"{t} {k:,}" for t, k in res.deleted.items())
    err.print(
        f"{verb}: {detail} (events before {res.events_before}, dead letters before {res.dead_before})",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    app.command("sql")(sql)
    app.command("report")(report)
    app.command("compact")(compact)
    app.command("backup")(backup_cmd)
    app.command("restore")(restore_cmd)
    app.command("retention")(retention_cmd)


def main() -> None:
    """These commands alone (`python -m pipeline.cli.analyst`); `callpulse` registers them too."""
    app = typer.Typer(add_completion=False, no_args_is_help=True, help="callpulse analysts' commands.")
    register(app)
    run_app(app, err)


if __name__ == "__main__":
    main()
