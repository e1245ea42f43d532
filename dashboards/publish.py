"""Publish the boards to a Grafana server through its HTTP API (grafana-client).

Idempotent: the folder is created once under a fixed uid, and each board is saved
under its fixed uid with ``overwrite``, so publishing twice changes nothing but the
version counter.
"""

from __future__ import annotations

from typing import Any

from dashboards.panels import FOLDER_TITLE, FOLDER_UID


def ensure_folder(api: Any, uid: str = FOLDER_UID, title: str = FOLDER_TITLE) -> str:
    """The folder's uid, creating the folder if it does not exist yet."""
    from grafana_client.client import GrafanaClientError

    try:
        api.folder.get_folder(uid)
    except GrafanaClientError as exc:
        if getattr(exc, "status_code", None) != 404:
            raise
        api.folder.create_folder(title, uid=uid)
    return uid


def publish(api: Any, boards: dict[str, dict[str, Any]], folder_uid: str = FOLDER_UID) -> list[dict[str, Any]]:
    """Save every board into the folder; return Grafana's answers (uid, url, version)."""
    ensure_folder(api, folder_uid)
    answers = []
    for board in boards.values():
        payload = {
            "dashboard": {**board, "id": None},
            "folderUid": folder_uid,
            "overwrite": True,
            "message": "callpulse dashboards publish",
        }
        answers.append(api.dashboard.update_dashboard(payload))
    return answers


def connect(url: str, token: str) -> Any:
    from grafana_client import GrafanaApi

    return GrafanaApi.from_url(url, credential=token)
