"""`callpulse dashboards build|publish`: registered on the main CLI by ``register(app)``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from pipeline.cli.output import error_console, fail
from pipeline.core.config import load_config

# The board builders load the Grafana SDK (about a second): imported by the commands that
# use them, so every other `callpulse` command starts without it.

TOKEN_ENV = "GRAFANA_TOKEN"
console = error_console()
dashboards_app = typer.Typer(no_args_is_help=True, help="Grafana dashboards as code: build JSON, publish.")

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="callpulse.toml (default targets if absent)")]


@dashboards_app.command("build")
def build_cmd(
    out: Annotated[Path | None, typer.Option("--out", help="Folder for the JSON files")] = None,
    config: ConfigOpt = None,
) -> None:
    """Write every board as JSON (default: dashboards/generated, the files Grafana provisions)."""
    from dashboards import build as boards

    out = out or boards.GENERATED_DIR
    for path in boards.write_all(out, load_config(config)):
        console.print(f"wrote {path}")


@dashboards_app.command("publish")
def publish_cmd(
    url: Annotated[str, typer.Option("--url", help="Grafana base URL, e.g. http://127.0.0.1:3000")],
    config: ConfigOpt = None,
) -> None:
    """Create or update the boards (fixed uids, overwrite) in the `callpulse` folder.
    The API token comes from the GRAFANA_TOKEN environment variable."""
    from dashboards import build as boards
    from dashboards import publish as grafana

    token = os.environ.get(TOKEN_ENV)
    if not token:
        fail(console, f"set {TOKEN_ENV} to a Grafana service-account token")
    answers = grafana.publish(grafana.connect(url, token), boards.build_all(load_config(config)))
    for a in answers:
        console.print(f"published {a.get('uid')} version {a.get('version')}: {a.get('url')}")


def register(app: typer.Typer) -> None:
    app.add_typer(dashboards_app, name="dashboards")
