"""Keep secrets out of what is printed, logged or stored: URI credentials and secret variables.

Pure and dependency-free, so every layer can mask what it prints (the sweep's
resume command, the tracking layer's params, tags and artifacts).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

# Environment variables whose values must never reach a param, tag, artifact or log line.
SECRET_ENV_VARS = (
    "MLFLOW_TRACKING_TOKEN",
    "MLFLOW_TRACKING_PASSWORD",
    "DATABRICKS_TOKEN",
    "AWS_SECRET_ACCESS_KEY",
    "RAY_AUTH_TOKEN",
)
_MIN_SECRET_LENGTH = 4  # shorter values would scrub ordinary text
_USERINFO = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]+@")


def redact_uri(uri: str) -> str:
    """`https://user:pass@host` -> `https://***@host`; URIs without credentials unchanged."""
    return _USERINFO.sub(r"\1***@", uri)


def without_credentials(uri: str) -> str:
    """`https://user:pass@host` -> `https://host`: for requests that need no login."""
    return _USERINFO.sub(r"\1", uri)


def scrub(text: str, *, environ: Mapping[str, str] | None = None) -> str:
    """`text` with URI credentials and the values of secret environment variables masked."""
    environ = os.environ if environ is None else environ
    text = redact_uri(text)
    for name in SECRET_ENV_VARS:
        secret = environ.get(name, "")
        if len(secret) >= _MIN_SECRET_LENGTH:
            text = text.replace(secret, "***")
    return text
