"""`callpulse alerts render` / `callpulse alerts check`: the Prometheus rule file from
metrics.export.rules, with settings taken from the config where the config knows better.

Burn-rate factors. A budget of ``1 - target`` can burn at most ``1 / (1 - target)``
times the sustainable rate (every call missed). With the default 80 % target that is
5x, so the SRE workbook's 14.4x and 6x page alerts could never fire. ``fit_burn_rates``
therefore scales the page factors down, keeping their ratio, so that the fastest one
is ``PAGE_HEADROOM`` (90 %) of the highest burn the *lowest* configured service-level
target allows; no page factor goes below the largest ticket factor. With 80 % the
pages become 4.5x over 1h/5m (service level below 10 %) and 1.875x over 6h/30m (below
62.5 %); targets of 95 % and above (max burn >= 20x) keep 14.4x and 6x unchanged.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from metrics.export.rules import AlertSettings, BurnWindows, render_rules
from pipeline.core.config import Config, load_config

PAGE_HEADROOM = 0.9

alerts_app = typer.Typer(no_args_is_help=True, help="Prometheus alert rules (generated, checked).")

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="callpulse.toml (default: ./callpulse.toml)")]
WindowOpt = Annotated[str, typer.Option(help="Rolling window the KPI alerts read (5m, 15m, 1h)")]
JobOpt = Annotated[str, typer.Option(help="Prometheus job name of the callpulse exporter")]
RunbookOpt = Annotated[
    str | None, typer.Option(help="Runbook base URL, <base>/<AlertName>.md (default: [alerts] runbook_url)")
]


def lowest_service_level_target(config: Config) -> float:
    """The lowest service-level target of the defaults and every configured queue."""
    return min(q.targets.service_level for q in (config.defaults, *config.queues.values()))


def max_burn_rate(target: float) -> float:
    """The highest possible burn rate for a service-level target (inf for 100 %)."""
    return float("inf") if target >= 1 else 1 / (1 - target)


def fit_burn_rates(settings: AlertSettings, target: float, headroom: float = PAGE_HEADROOM) -> AlertSettings:
    """``settings`` with page burn factors that a queue with ``target`` can reach."""
    if not settings.burn_page:
        return settings
    cap = headroom * max_burn_rate(target)
    fastest = max(b.factor for b in settings.burn_page)
    if fastest <= cap:
        return settings
    floor = max((b.factor for b in settings.burn_ticket), default=0.0)
    scale = cap / fastest
    page = tuple(BurnWindows(b.long, b.short, round(max(b.factor * scale, floor), 3)) for b in settings.burn_page)
    return replace(settings, burn_page=page)


def settings_for(
    config: Config,
    base: AlertSettings | None = None,
    window: str | None = None,
    job: str | None = None,
    runbook_url: str | None = None,
) -> AlertSettings:
    """Alert settings for ``config``: burn factors fitted to its targets, its runbook base,
    overrides applied."""
    s = base or AlertSettings(runbook_url=config.alerts.runbook_url)
    changes: dict[str, str] = {}
    if window is not None:
        changes["window"] = window
    if job is not None:
        changes["job"] = job
    if runbook_url is not None:
        changes["runbook_url"] = runbook_url
    if changes:
        s = replace(s, **changes)  # type: ignore[arg-type]
    return fit_burn_rates(s, lowest_service_level_target(config))


def render_for_config(config: Config, base: AlertSettings | None = None, **overrides: str | None) -> str:
    return render_rules(settings_for(config, base, **overrides))


def check_rules_text(text: str, promtool: str | None = None) -> subprocess.CompletedProcess[str] | None:
    """``promtool check rules`` on ``text``; None when promtool is not installed."""
    promtool = promtool or shutil.which("promtool")
    if promtool is None:
        return None
    with tempfile.TemporaryDirectory(prefix="callpulse-rules-") as tmp:
        path = Path(tmp) / "callpulse.rules.yml"
        path.write_text(text, encoding="utf-8")
        return subprocess.run(
            [promtool, "check", "rules", str(path)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


@alerts_app.command("render")
def render_cmd(
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Rule file to write (default: stdout)")] = None,
    config: ConfigOpt = None,
    window: WindowOpt = "15m",
    job: JobOpt = "callpulse",
    runbook_url: RunbookOpt = None,
) -> None:
    """Write the alert and recording rules for Prometheus."""
    try:
        text = render_for_config(load_config(config), window=window, job=job, runbook_url=runbook_url)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    if out is None:
        sys.stdout.write(text)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    typer.echo(f"wrote {out}", err=True)


@alerts_app.command("check")
def check_cmd(
    rules: Annotated[Path | None, typer.Option("--rules", help="Check this rule file instead of rendering one")] = None,
    config: ConfigOpt = None,
    window: WindowOpt = "15m",
    job: JobOpt = "callpulse",
    runbook_url: RunbookOpt = None,
) -> None:
    """Run `promtool check rules` on the rendered rules (or on --rules FILE)."""
    if rules is not None:
        text = rules.read_text(encoding="utf-8")
    else:
        try:
            text = render_for_config(load_config(config), window=window, job=job, runbook_url=runbook_url)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
    proc = check_rules_text(text)
    if proc is None:
        typer.echo("promtool not found; rules not checked (apt-get install prometheus)", err=True)
        return
    typer.echo((proc.stdout + proc.stderr).strip(), err=proc.returncode != 0)
    if proc.returncode != 0:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add the ``alerts`` command group to the callpulse CLI."""
    app.add_typer(alerts_app, name="alerts")
