"""Tracking URIs: resolve one for a sweep and check it is reachable (`redaction` masks them).

Nothing here imports MLflow, so a bad or unreachable URI fails in a second,
before MLflow or Ray load.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from rkdo_tune.errors import EnvironmentFailure, UsageError
from rkdo_tune.redaction import redact_uri, without_credentials
from rkdo_tune.tracking.layout import DEFAULT_DB_NAME

URI_ENV = "MLFLOW_TRACKING_URI"
HEALTH_TIMEOUT_S = 5.0
_SQLITE = "sqlite:///"


def _source(explicit: str | None) -> str:
    return "--tracking-uri" if explicit else URI_ENV


def resolve_tracking_uri(explicit: str | None, *, environ: Mapping[str, str], cwd: Path) -> str:
    """The sweep's tracking URI: the flag, else MLFLOW_TRACKING_URI, else `<cwd>/mlflow.db`.

    SQLite paths are made absolute here, on the driver, so that Ray workers
    (whose working directory is their trial folder) open the same database.
    """
    uri = (explicit or environ.get(URI_ENV) or "").strip()
    if not uri:
        return f"{_SQLITE}{(cwd / DEFAULT_DB_NAME).resolve()}"
    where = _source(explicit)
    if uri in ("sqlite://", "sqlite:///:memory:"):
        raise UsageError(f"{where} {uri}: an in-memory store cannot be shared with Ray workers")
    if uri.startswith(_SQLITE):
        path_text, mark, query = uri[len(_SQLITE) :].partition("?")
        path = Path(path_text).expanduser()
        return f"{_SQLITE}{path if path.is_absolute() else (cwd / path).resolve()}{mark}{query}"
    if uri.startswith("file:") or ("://" not in uri and not uri.startswith("databricks")):
        raise UsageError(
            f"{where} {redact_uri(uri)}: MLflow's plain file store is deprecated; "
            "use an http(s):// server or sqlite:///path/to/mlflow.db"
        )
    return uri


def sqlite_path(uri: str) -> Path | None:
    """The database file of a sqlite:/// URI, else None."""
    if not uri.startswith(_SQLITE):
        return None
    return Path(uri[len(_SQLITE) :].split("?", 1)[0])


def _health_url(uri: str) -> str:
    # The health probe needs no credentials; urllib would not accept them in the URL anyway.
    bare = without_credentials(uri)
    return f"{bare.rstrip('/')}/health"


def check_reachable(uri: str, *, timeout: float = HEALTH_TIMEOUT_S) -> None:
    """Fail with one line if the tracking store cannot be reached; one try, `timeout` seconds.

    http(s): GET <uri>/health. Any HTTP answer (even 401 or 404) means a
    server is there; only a network failure counts as unreachable.
    sqlite: the database's directory must exist.
    """
    path = sqlite_path(uri)
    if path is not None:
        if not path.parent.is_dir():
            raise EnvironmentFailure(f"tracking URI {uri}: directory {path.parent} does not exist")
        return
    if not uri.startswith(("http://", "https://")):
        return
    try:
        with urllib.request.urlopen(_health_url(uri), timeout=timeout):
            return
    except urllib.error.HTTPError:
        return
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise EnvironmentFailure(
            f"tracking URI {redact_uri(uri)}: cannot reach the MLflow server ({reason}); "
            "start it, or pass another --tracking-uri"
        ) from None


def ui_lines(uri: str, *, experiment_id: str, run_id: str) -> list[str]:
    """How to open this sweep in the MLflow UI: a command for a local store, a URL for a server."""
    shown = redact_uri(uri)
    if uri.startswith(("http://", "https://")):
        return [f"MLflow UI: {shown.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"]
    return [f"open the MLflow UI: mlflow ui --backend-store-uri {shown}"]
