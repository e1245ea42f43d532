"""Publish the boards to a Grafana server through its HTTP API (grafana-client).

Idempotent: the folder is created once under a fixed uid, and each board is saved
under its fixed uid with ``overwrite``, so publishing twice changes nothing but the
version counter.
"""

from __future__ import annotations

import re
from typing import Any

from dashboards.panels import FOLDER_TITLE, FOLDER_UID
from pipeline.core.errors import OperatorError, ServiceUnavailable, first_line


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
    """Save every board into the folder; return Grafana's answers (uid, url, version).

    A server that can't be reached raises ``ServiceUnavailable``, one that refuses
    (a bad token, a server error) ``OperatorError``, each with one line to show."""
    import niquests  # grafana-client's HTTP library
    from grafana_client.client import GrafanaException, GrafanaUnauthorizedError

    url = str(getattr(getattr(api, "client", None), "url", "")).removesuffix("/api") or "the given URL"
    try:
        return _publish(api, boards, folder_uid)
    except niquests.RequestException as exc:
        raise ServiceUnavailable(
            f"Grafana at {url}: unreachable ({_reason(exc)}); check --url and that Grafana is running"
        ) from None
    except GrafanaUnauthorizedError as exc:
        raise OperatorError(
            f"Grafana at {url}: the token was refused ({exc.status_code}); check GRAFANA_TOKEN"
        ) from None
    except GrafanaException as exc:
        raise OperatorError(f"Grafana at {url}: {exc.status_code} {first_line(exc)}") from None


def _reason(exc: BaseException) -> str:
    """The innermost cause of an HTTP client error ("[Errno 111] Connection refused"), not urllib3's chain."""
    text = first_line(exc)
    errno = re.search(r"\[Errno -?\d+\][^')\]]*", text)
    return errno.group(0).strip() if errno else exc.__class__.__name__


def _publish(api: Any, boards: dict[str, dict[str, Any]], folder_uid: str) -> list[dict[str, Any]]:
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
