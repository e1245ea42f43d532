"""The KPI table (metrics.kpi.definitions) and the places that judge KPIs by it: breach
detection, the wallboard JSON, the terminal board, the exporter's series and the alert rules."""

from __future__ import annotations

import dataclasses
import io
from datetime import UTC, datetime

import pytest
from rich.console import Console

from dashboards import wallboard
from metrics.export import names, rules
from metrics.kpi import definitions
from metrics.kpi.breaches import LIVE, Evaluation, worse
from metrics.kpi.definitions import ABANDON_RATE, ASA, OLDEST_WAIT, QUEUE_KPIS, SERVICE_LEVEL
from metrics.kpi.snapshot import KpiSnapshot, QueueKpis, QueueSnapshot, QueueTargets
from pipeline.cli import board

AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TARGETS = QueueTargets(
    service_level=0.8,
    abandon_rate=0.05,
    asa_s=30.0,
    oldest_wait_s=120.0,
    min_calls=10,
    sl_threshold_s=15.0,
    sl_formula="negative",
)


@pytest.mark.parametrize(
    ("kpi", "value", "target", "breaches"),
    [
        (SERVICE_LEVEL, 0.79, 0.8, True),  # higher is better: below the target breaches
        (SERVICE_LEVEL, 0.8, 0.8, False),  # on the target is within it
        (SERVICE_LEVEL, 0.81, 0.8, False),
        (ASA, 31.0, 30.0, True),  # lower is better: above the target breaches
        (ASA, 30.0, 30.0, False),
        (ASA, 5.0, 30.0, False),
        (ABANDON_RATE, 0.06, 0.05, True),
        (ABANDON_RATE, 0.0, 0.05, False),
        (OLDEST_WAIT, 121.0, 120.0, True),
        (OLDEST_WAIT, 119.0, 120.0, False),
        (definitions.POOR_QUALITY, 0.11, 0.10, True),  # lower is better
        (definitions.POOR_QUALITY, 0.10, 0.10, False),
    ],
)
def test_direction_by_hand(kpi: definitions.Kpi, value: float, target: float, breaches: bool) -> None:
    assert kpi.breaches(value, target) is breaches
    assert kpi.verdict(value, target) is (not breaches)
    assert Evaluation("q", kpi.name, "15m", AT, value, target).breaching is breaches


def test_gating_silences_only_gated_kpis() -> None:
    assert SERVICE_LEVEL.verdict(0.1, 0.8, enough_calls=False) is None
    assert ASA.verdict(300.0, 30.0, enough_calls=False) is None
    assert OLDEST_WAIT.verdict(300.0, 120.0, enough_calls=False) is False  # one caller waiting too long counts
    assert ASA.verdict(None, 30.0) is None


def test_the_table_drives_breach_detection(monkeypatch: pytest.MonkeyPatch) -> None:
    """Turn ASA's direction round in the table: the detector follows (nothing else knows it)."""
    ev = Evaluation("q", "asa", "15m", AT, 10.0, 30.0)
    assert not ev.breaching
    assert worse("asa", 10.0, 40.0) == 40.0
    flipped = dataclasses.replace(ASA, higher_is_better=True)
    monkeypatch.setitem(definitions.BY_NAME, "asa", flipped)
    assert ev.breaching
    assert worse("asa", 10.0, 40.0) == 10.0


def test_worse_by_hand() -> None:
    assert SERVICE_LEVEL.worse(0.7, 0.9) == 0.7
    assert OLDEST_WAIT.worse(70.0, 90.0) == 90.0
    assert ABANDON_RATE.worse(None, 0.1) == 0.1
    assert ASA.worse(12.0, None) == 12.0


def test_every_kpi_is_wired() -> None:
    """Each KPI names fields that exist where it is read from, series, alert settings."""
    rolling_fields = {f.name for f in dataclasses.fields(QueueKpis)}
    live_fields = {f.name for f in dataclasses.fields(QueueSnapshot)}
    for kpi in QUEUE_KPIS:
        assert kpi.value in (rolling_fields if kpi.rolling else live_fields), kpi
        assert kpi.target in {f.name for f in dataclasses.fields(QueueTargets)}, kpi
        assert kpi.name in names.KPI_SERIES, kpi
        assert isinstance(getattr(rules.AlertSettings(), kpi.name), rules.RuleSettings), kpi
    assert set(names.KPI_SERIES) == {k.name for k in QUEUE_KPIS}
    # the quality KPIs: breach rows only (their alert reads counters), targets in the snapshot
    assert set(definitions.BY_NAME) == {k.name for k in (*QUEUE_KPIS, *definitions.QUALITY_KPIS)}
    for kpi in definitions.QUALITY_KPIS:
        assert kpi.target in {f.name for f in dataclasses.fields(QueueTargets)}, kpi
        assert kpi.name not in names.KPI_SERIES, kpi
    assert sorted(definitions.BOARD_ORDER, key=QUEUE_KPIS.index) == list(QUEUE_KPIS)
    assert rules.KPI_ALERTS == (
        rules.SERVICE_LEVEL_LOW,
        rules.ABANDON_RATE_HIGH,
        rules.ASA_HIGH,
        rules.OLDEST_WAIT_HIGH,
    )


def _queue(window: QueueKpis, oldest_wait_s: float | None) -> QueueSnapshot:
    return QueueSnapshot("billing", TARGETS, {"15m": window}, QueueKpis(), AT, 1, oldest_wait_s)


def test_reading_takes_rolling_kpis_from_the_window_and_live_ones_from_the_queue() -> None:
    q = _queue(QueueKpis(offered=9, answered=9, service_level=0.5, asa_s=40.0), 130.0)
    assert q.reading(SERVICE_LEVEL, "15m") == (0.5, 0.8, False)  # 9 offered < min_calls 10
    assert q.reading(OLDEST_WAIT, "15m") == (130.0, 120.0, False)
    assert q.reading(ASA, "5m") == (None, 30.0, False)  # no such window


def test_wallboard_and_terminal_board_agree_on_breaches() -> None:
    """9 calls: SL 50 % and ASA 40 s are past target but silenced; oldest wait 130 s breaches.
    With 10 calls, the same numbers breach; abandon rate 0.05 sits on its target."""
    few = _queue(QueueKpis(offered=9, answered=9, service_level=0.5, asa_s=40.0, abandon_rate=0.05), 130.0)
    enough = dataclasses.replace(few, windows={"15m": dataclasses.replace(few.windows["15m"], offered=10)})
    for q, expected in (
        (few, {"oldest_wait_s": "breach", "service_level": "none", "asa_s": "none", "abandon_rate": "none"}),
        (enough, {"oldest_wait_s": "breach", "service_level": "breach", "asa_s": "breach", "abandon_rate": "ok"}),
    ):
        doc = wallboard.wallboard_json(KpiSnapshot(AT, 900, {"billing": q}), [], [], [], "UTC", "15m")
        tiles = doc["queues"][0]["tiles"]
        assert {k: tiles[k]["status"] for k in expected} == expected
        assert {b["kpi"] for b in doc["breaches"]} == {k for k, v in expected.items() if v == "breach"}
        assert tiles["service_level"]["unit"] == "ratio" and tiles["asa_s"]["unit"] == "seconds"
        console = Console(record=True, width=200, color_system="truecolor", force_terminal=True, file=io.StringIO())
        console.print(board.render(KpiSnapshot(AT, 900, {"billing": q}), "15m"))
        row = next(line for line in console.export_text(styles=True).splitlines() if "billing" in line)
        assert row.count("37;41m") == sum(v == "breach" for v in expected.values())  # white on red cells
        assert row.count("32m") == sum(v == "ok" for v in expected.values())  # green cells


def test_live_kpis_breach_in_the_live_window() -> None:
    assert [k.name for k in definitions.live()] == ["oldest_wait"]
    assert LIVE == "live"
    assert all(k.gated for k in definitions.rolling())
