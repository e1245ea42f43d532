"""The terminal wallboard of `callpulse demo`: a rich table built from a snapshot.

Pure: ``render(snapshot, window)`` returns a renderable; the CLI owns the screen.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from rich.console import Group
from rich.table import Table
from rich.text import Text

from metrics.kpi.definitions import BOARD_ORDER, RATIO, Kpi
from metrics.kpi.snapshot import KpiSnapshot, QueueSnapshot
from pipeline.core.records import WORK_STATES


def _fmt_pct(v: float | None) -> str:
    return "—" if v is None else f"{v * 100:.1f}%"


def _fmt_s(v: float | None) -> str:
    if v is None:
        return "—"
    return f"{v:.0f}s" if v < 120 else f"{v / 60:.1f}m"


def _style(ok: bool | None) -> str:
    return "" if ok is None else ("bold green" if ok else "bold white on red")


def _cell(text: str, ok: bool | None) -> Text:
    return Text(text, style=_style(ok))


def _kpi_cell(q: QueueSnapshot, kpi: Kpi, window: str) -> Text:
    value, target, enough = q.reading(kpi, window)
    text = _fmt_pct(value) if kpi.unit == RATIO else _fmt_s(value)
    return _cell(text, kpi.verdict(value, target, enough))


def _heading(kpi: Kpi) -> str:
    return kpi.label if kpi.label.isupper() else kpi.label.lower()  # "ASA" stays upper case


def _row(q: QueueSnapshot, window: str) -> list[Text]:
    k = q.windows.get(window)
    agents = q.agents_by_state()
    return [
        Text(q.queue, style="bold"),
        _cell(str(q.calls_waiting), None),
        *(_kpi_cell(q, kpi, window) for kpi in BOARD_ORDER),
        Text(f"{k.offered if k else 0}/{k.answered if k else 0}/{k.abandoned if k else 0}"),
        Text("/".join(str(n) for n in agents.values())),
    ]


def render(snapshot: KpiSnapshot, window: str = "15m", status: str = "", tz: str = "UTC") -> Group:
    title = "callpulse wallboard"
    if snapshot.watermark:
        local = snapshot.watermark.astimezone(ZoneInfo(tz))
        title += f" — window {window}, as of {local:%Y-%m-%d %H:%M:%S} {tz}"
    table = Table(title=title, expand=True)
    states = "/".join(s.replace("_", " ") for s in WORK_STATES)
    for name in (
        "queue",
        "waiting",
        *(_heading(kpi) for kpi in BOARD_ORDER),
        "offered/answered/abandoned",
        f"agents {states}",
    ):
        table.add_column(name, justify="left" if name == "queue" else "right")
    for q in sorted(snapshot.queues.values(), key=lambda q: q.queue):
        table.add_row(*_row(q, window))
    return Group(table, Text(status, style="dim"))
