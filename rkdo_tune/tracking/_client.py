"""Thin, batched helpers over `MlflowClient`: explicit run ids, no fluent global state.

Everything the sweep driver and the Ray workers write goes through here, so
every param and tag value is stringified, truncated to MLflow's limits and
scrubbed of secrets in one place.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, Run, RunTag, ViewType
from mlflow.exceptions import MlflowException
from sqlalchemy.exc import SQLAlchemyError

from rkdo_tune.errors import EnvironmentFailure
from rkdo_tune.redaction import redact_uri, scrub
from rkdo_tune.tracking._store import prepared_store
from rkdo_tune.tracking._uri import sqlite_path

MAX_PARAMS_OR_TAGS_PER_BATCH = 100
MAX_METRICS_PER_BATCH = 1000
MAX_PARAM_LENGTH = 6000
MAX_TAG_LENGTH = 8000
FINISHED, FAILED, KILLED, RUNNING = "FINISHED", "FAILED", "KILLED", "RUNNING"
ENDED_BADLY = (FAILED, KILLED)
SEARCH_PAGE_SIZE = 1000  # runs per search request; more come page by page
OLDEST_FIRST = ("attributes.start_time ASC",)
NEWEST_FIRST = ("attributes.start_time DESC",)  # also MLflow's order when none is given


def open_client(uri: str) -> MlflowClient:
    # MLflow prints "View run ... at <uri>" whenever a run ends, credentials included;
    # the sweep prints its own (redacted) link once.
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    if sqlite_path(uri) is None:
        return MlflowClient(tracking_uri=uri)
    return prepared_store(uri, functools.partial(_built_client, uri))


def _built_client(uri: str) -> MlflowClient:
    """A client whose store is built: the first build creates a fresh SQLite store's tables."""
    client = MlflowClient(tracking_uri=uri)
    client.search_experiments(max_results=1)
    return client


def now_ms() -> int:
    return int(time.time() * 1000)


def first_line(error: BaseException) -> str:
    """`Type: first line of the message`, for tags and one-line errors."""
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple | dict):
        return json.dumps(value, separators=(",", ":"), default=str)
    return str(value)


def param_value(value: Any) -> str:
    return scrub(_text(value))[:MAX_PARAM_LENGTH]


def tag_value(value: Any) -> str:
    return scrub(_text(value))[:MAX_TAG_LENGTH]


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def log_params(client: MlflowClient, run_id: str, params: Mapping[str, Any]) -> None:
    """Log params in batches, skipping keys the run already has.

    A run's params cannot change (MLflow raises "Changing param values is not
    allowed"); a reattached run keeps the values it was started with.
    """
    existing = client.get_run(run_id).data.params
    entries = [Param(k, param_value(v)) for k, v in params.items() if k not in existing]
    for chunk in _chunks(entries, MAX_PARAMS_OR_TAGS_PER_BATCH):
        client.log_batch(run_id, params=list(chunk))


def set_tags(client: MlflowClient, run_id: str, tags: Mapping[str, Any]) -> None:
    """Tags in batches; an empty value is left out (an empty tag is noise in the UI)."""
    entries = [RunTag(k, tag_value(v)) for k, v in tags.items() if tag_value(v)]
    for chunk in _chunks(entries, MAX_PARAMS_OR_TAGS_PER_BATCH):
        client.log_batch(run_id, tags=list(chunk))


def make_metric(key: str, value: Any, step: int, timestamp: int | None = None) -> Metric:
    return Metric(key, float(value), timestamp or now_ms(), int(step))


def finite_metric(key: str, value: Any, step: int, timestamp: int) -> Metric | None:
    """A metric, or None when `value` is missing or not finite (e.g. the first slope window)."""
    if value is None or not math.isfinite(float(value)):
        return None
    return make_metric(key, value, step, timestamp)


def log_metrics(client: MlflowClient, run_id: str, metrics: Sequence[Metric]) -> None:
    """One request per 1000 metrics: never one request per step."""
    for chunk in _chunks(list(metrics), MAX_METRICS_PER_BATCH):
        client.log_batch(run_id, metrics=list(chunk))


def create_run(
    client: MlflowClient, *, experiment_id: str, run_name: str, tags: Mapping[str, Any]
) -> str:
    run = client.create_run(
        experiment_id,
        run_name=run_name,
        tags={k: tag_value(v) for k, v in tags.items() if tag_value(v)},
    )
    return run.info.run_id


def _filter(tags: Mapping[str, str]) -> str:
    clauses = []
    for key, value in tags.items():
        if "'" in value:  # run ids, trial ids and sweep names never hold quotes
            raise ValueError(f"cannot search for tag {key}={value!r}")
        clauses.append(f"tags.`{key}` = '{value}'")
    return " and ".join(clauses)


def search_runs(
    client: MlflowClient,
    experiment_id: str,
    *,
    tags: Mapping[str, str],
    order_by: Sequence[str] = OLDEST_FIRST,
) -> list[Run]:
    """Every active run of the experiment whose tags match, in `order_by` order.

    Reads every page; the one search the writers and `reading` share.
    """
    runs: list[Run] = []
    token = None
    while True:
        page = client.search_runs(
            [experiment_id],
            filter_string=_filter(tags),
            run_view_type=ViewType.ACTIVE_ONLY,
            max_results=SEARCH_PAGE_SIZE,
            order_by=list(order_by),
            page_token=token,
        )
        runs.extend(page)
        token = page.token
        if not token:
            return runs


@contextlib.contextmanager
def quick_http_failures(timeout_s: int = 10) -> Iterator[None]:
    """Let the driver's first MLflow calls fail in seconds, not after minutes of retries.

    MLflow retries HTTP requests 7 times with backoff by default; values the
    user set are kept. The environment is restored before Ray starts workers.
    """
    wanted = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": str(timeout_s)}
    added = [name for name in wanted if name not in os.environ]
    os.environ.update({name: wanted[name] for name in added})
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


@contextlib.contextmanager
def tracking_errors_as_one_line(uri: str) -> Iterator[None]:
    """Turn MLflow and store errors on the driver into one EnvironmentFailure line."""
    try:
        yield
    except (MlflowException, SQLAlchemyError, OSError) as exc:
        raise EnvironmentFailure(
            f"tracking URI {redact_uri(uri)}: {scrub(first_line(exc))}"
        ) from None
