"""`callpulse dashboards publish` against a real Grafana, twice (idempotent).

Grafana cannot be installed on the development machines, so this is the one test that
is skipped unless a server is given. To run it:

    docker run -d -p 3000:3000 grafana/grafana        # or any Grafana 11/12
    # create a service account with the Editor role and a token for it, then
    GRAFANA_URL=http://127.0.0.1:3000 GRAFANA_TOKEN=glsa_... \\
        .venv/bin/python -m pytest tests/integration/test_grafana_publish.py
"""

from __future__ import annotations

import os

import pytest

from dashboards import build as boards
from dashboards import publish
from dashboards.panels import FOLDER_UID
from tests.support.cli import Cli


def test_publish_creates_folder_and_boards_idempotently(cli: Cli) -> None:
    url = os.environ.get("GRAFANA_URL")
    if not url:
        pytest.skip(
            "GRAFANA_URL not set: no Grafana server to publish to "
            "(set GRAFANA_URL and GRAFANA_TOKEN; see this module's docstring)"
        )
    token = os.environ.get("GRAFANA_TOKEN")
    assert token, "GRAFANA_URL is set, so GRAFANA_TOKEN must be too"
    api = publish.connect(url, token)
    versions = []
    for _ in range(2):
        out = cli("dashboards", "publish", "--url", url)
        assert out.returncode == 0, out.stderr
        versions.append({b["uid"]: api.dashboard.get_dashboard(b["uid"]) for b in boards.build_all().values()})
    assert api.folder.get_folder(FOLDER_UID)["uid"] == FOLDER_UID
    folders = [f for f in api.folder.get_all_folders() if f["uid"] == FOLDER_UID]
    assert len(folders) == 1
    for uid, first in versions[0].items():
        second = versions[1][uid]
        assert second["meta"]["folderUid"] == FOLDER_UID
        assert second["dashboard"]["version"] == first["dashboard"]["version"] + 1
        assert len(second["dashboard"]["panels"]) == len(first["dashboard"]["panels"])
