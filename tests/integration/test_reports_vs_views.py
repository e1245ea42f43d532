"""Report figures (polars over the additive tables) equal the kpi_* views for the same
period, with days in the site's time zone, across the Europe/Berlin DST change
(2026-03-29 has 23 hours)."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
import pytest

from metrics.reports import tables as reports
from pipeline.cli.analyst import build, period
from pipeline.core import sqlfiles
from pipeline.core.config import Config
from pipeline.core.records import Parsed, RawBatch
from pipeline.ingest.sources.simulator import SimConfig, simulate
from pipeline.ops import analyst_copy as analyst
from pipeline.ops import backup
from tests.helpers import engine
from tests.support.cli import Cli

TZ = "Europe/Berlin"
BERLIN = ZoneInfo(TZ)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Config, analyst.Opened]]:
    """Three simulated Berlin days (28-30 March 2026), with media quality, stored, snapshotted and opened read-only."""
    folder = tmp_path_factory.mktemp("reports")
    cfg = Config(db=folder / "cp.duckdb", timezone=TZ)
    eng = engine(cfg.db, cfg)
    records = list(simulate(SimConfig(seed=3, day=date(2026, 3, 28), days=3, tz=TZ, scale=0.4, quality=True)))
    for i in range(0, len(records), 5000):
        chunk = records[i : i + 5000]
        eng.process(RawBatch.from_items("sim", [Parsed(str(i + j), json.dumps(r), r) for j, r in enumerate(chunk)]))
    backup.copy_live(eng.store.con, analyst.copy_path(cfg))
    eng.close()
    opened = analyst.open_copy(cfg)
    yield cfg, opened
    opened.con.close()


def view(opened: analyst.Opened, sql: str, params: dict[str, Any] | None = None) -> pl.DataFrame:
    out = pl.from_arrow(opened.con.sql(sql, params=params).to_arrow_table())
    assert isinstance(out, pl.DataFrame)
    return out


def assert_same(report: pl.DataFrame, expected: pl.DataFrame, keys: list[str], columns: list[str]) -> None:
    assert report.height == expected.height and report.height > 0
    got = {tuple(r[k] for k in keys): r for r in report.to_dicts()}
    for row in expected.to_dicts():
        mine = got[tuple(row[k] for k in keys)]
        for col in columns:
            a, b = mine[col], row[col]
            if b is None or (isinstance(b, float) and math.isnan(b)):
                assert a is None, (keys, row, col, a)
            else:
                assert a == pytest.approx(b, rel=1e-9, abs=1e-9), (row, col, a, b)


def local(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(tzinfo=BERLIN).astimezone(UTC)


def report_and_view(opened: analyst.Opened, kind: str, view_sql: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The ``kind`` report over 28-30 March (across the DST change) and ``view_sql`` over
    the same days (``$lo`` / ``$hi``)."""
    lo, hi = local("2026-03-28"), local("2026-03-31")
    return build(opened.con, kind, lo, hi, None, TZ), view(opened, view_sql, {"lo": lo, "hi": hi})


def test_interval_report_equals_kpi_queue_interval(site: tuple[Config, analyst.Opened]) -> None:
    rep, exp = report_and_view(
        site[1], "interval", "SELECT * FROM kpi_queue_interval WHERE interval_start >= $lo AND interval_start < $hi"
    )
    assert_same(rep, exp, ["queue", "interval_start"], list(reports.QUEUE_KPIS) + ["waiting"])


def test_daily_report_equals_kpi_queue_daily_with_a_23_hour_day(
    site: tuple[Config, analyst.Opened],
) -> None:
    opened = site[1]
    rep, exp = report_and_view(
        opened, "daily", "SELECT * FROM kpi_queue_daily WHERE interval_start >= $lo AND interval_start < $hi"
    )
    assert_same(rep, exp, ["queue", "interval_start"], list(reports.QUEUE_KPIS))
    hours = dict(rep.filter(pl.col("queue") == "billing").select("day", "hours").iter_rows())
    assert hours == {date(2026, 3, 28): 24.0, date(2026, 3, 29): 23.0, date(2026, 3, 30): 24.0}
    # The DST day runs from 23:00 UTC on the 28th (CET) to 22:00 UTC on the 29th (CEST).
    dst_lo, dst_hi = period("2026-03-29", None, TZ, None)
    assert (dst_lo, dst_hi) == (
        datetime(2026, 3, 28, 23, tzinfo=UTC),
        datetime(2026, 3, 29, 22, tzinfo=UTC),
    )
    by_calls = view(
        opened,
        "SELECT queue, count(*) AS offered FROM calls WHERE offered_at >= $lo AND offered_at < $hi GROUP BY queue",
        {"lo": dst_lo, "hi": dst_hi},
    )
    day = rep.filter(pl.col("day") == date(2026, 3, 29))
    assert dict(day.select("queue", "offered").iter_rows()) == dict(by_calls.iter_rows())
    # The simulated centre opens at 08:00 local time on the DST day too (06:00 UTC, CEST).
    first = view(
        opened,
        "SELECT min(interval_start) FROM kpi_queue_interval WHERE interval_start >= $lo "
        "AND interval_start < $hi AND offered > 0",
        {"lo": dst_lo, "hi": dst_hi},
    ).item()
    assert first.astimezone(BERLIN).hour == 8


def test_queues_agents_and_cases_reports_equal_the_views(
    site: tuple[Config, analyst.Opened],
) -> None:
    cfg, opened = site
    lo, hi = period("2026-03-29", None, TZ, None)
    queues = build(opened.con, "queues", lo, hi, None, TZ)
    daily = view(opened, "SELECT * FROM kpi_queue_daily WHERE interval_start = $lo", {"lo": lo})
    assert_same(queues, daily, ["queue"], list(reports.QUEUE_KPIS))

    agents = build(opened.con, "agents", lo, hi, None, TZ)
    agent_daily = view(opened, "SELECT * FROM kpi_agent_daily WHERE interval_start = $lo", {"lo": lo})
    assert_same(agents, agent_daily, ["agent_id"], list(reports.AGENT_KPIS))
    assert agents.get_column("qa_score").drop_nulls().len() > 0

    all_lo, all_hi = local("2026-03-01"), local("2026-04-01")
    cases = build(opened.con, "cases", all_lo, all_hi, None, TZ)
    resolution = view(opened, "SELECT * FROM kpi_case_resolution")
    assert_same(
        cases,
        resolution,
        ["queue", "category"],
        [
            "cases",
            "resolved",
            "median_resolution_s",
            "p90_resolution_s",
            "first_contact_resolution_rate",
        ],
    )

    one = build(opened.con, "interval", lo, hi, "billing", TZ)
    assert set(one.get_column("queue")) == {"billing"}


def test_cli_daily_csv_equals_the_view(cli: Cli, site: tuple[Config, analyst.Opened], tmp_path: Path) -> None:
    cfg, opened = site
    run = cli.analyst(
        "report", "daily", "--from", "2026-03-29", "--format", "csv", "--db", cfg.db, "--config", _toml(tmp_path)
    )
    assert run.returncode == 0, run.stderr
    rows = list(csv.DictReader(io.StringIO(run.stdout)))
    exp = view(
        opened,
        "SELECT queue, offered, service_level FROM kpi_queue_daily WHERE interval_start = $lo",
        {"lo": datetime(2026, 3, 28, 23, tzinfo=UTC)},
    )
    assert {r["queue"]: int(r["offered"]) for r in rows} == dict(exp.select("queue", "offered").iter_rows())
    for r in rows:
        assert r["interval_start"].startswith("2026-03-29T00:00:00") and r["hours"] == "23.0"
        want = exp.filter(pl.col("queue") == r["queue"]).get_column("service_level").item()
        assert float(r["service_level"]) == pytest.approx(want)
    assert "Europe/Berlin" in run.stderr and "analyst copy" in run.stderr


def _toml(folder: Path) -> Path:
    path = folder / "callpulse.toml"
    path.write_text(f'[site]\ntimezone = "{TZ}"\n')
    return path


def test_report_period_defaults_to_the_watermark_day() -> None:
    lo, hi = period(None, None, TZ, datetime(2026, 3, 29, 21, 30, tzinfo=UTC))  # 23:30 CEST
    assert hi - lo == timedelta(hours=23)


def test_rolling_kpi_query_equals_the_interval_view(site: tuple[Config, analyst.Opened]) -> None:
    cfg, opened = site
    lo = datetime(2026, 3, 29, 8, tzinfo=UTC)
    rolling = view(opened, sqlfiles.load("analyst/rolling_kpis"), {"lo": lo, "hi": lo + timedelta(minutes=15)})
    exp = view(opened, "SELECT * FROM kpi_queue_interval WHERE interval_start = $lo", {"lo": lo})
    assert_same(
        rolling,
        exp,
        ["queue"],
        [
            "offered",
            "answered",
            "abandoned",
            "service_level",
            "asa_s",
            "abandon_rate",
            "aht_s",
            "max_wait_s",
        ],
    )


QUALITY_KPIS = ["calls", "mos_mean", "poor_mos_ratio", "jitter_p95_ms", "loss_mean_pct", "poor_network_ratio"]


def test_quality_agents_report_equals_the_rolling_macro_and_the_agent_view(site: tuple[Config, analyst.Opened]) -> None:
    """The polars report per agent over a day equals the SQL macro's rolling window over the
    same day, and its calls the day's kpi_quality_agent_interval rows summed."""
    opened = site[1]
    lo, hi = period("2026-03-29", None, TZ, None)
    rep = build(opened.con, "quality-agents", lo, hi, None, TZ)
    window = view(
        opened, "SELECT key AS agent_id, * FROM quality_kpis_by($lo, $hi, NULL, 'agent')", {"lo": lo, "hi": hi}
    )
    assert_same(rep, window, ["agent_id"], [*QUALITY_KPIS, "poor_calls", "poor_quality_ratio"])
    summed = view(
        opened,
        "SELECT agent_id, sum(calls)::BIGINT AS calls, sum(poor_calls)::BIGINT AS poor_calls FROM kpi_quality_agent_interval "
        "WHERE interval_start >= $lo AND interval_start < $hi GROUP BY agent_id",
        {"lo": lo, "hi": hi},
    )
    assert_same(rep, summed, ["agent_id"], ["calls", "poor_calls"])
    assert rep.height > 1 and rep.get_column("poor_calls").sum() > 0
