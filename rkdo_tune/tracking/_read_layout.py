"""What `reading` needs to know of the two run layouts (see `layout`).

Layout 2 keeps the fixed settings on the sweep run only, so a seed run's full
config is the sweep's fixed settings, each searched parameter's fallback, then
the seed run's own params; and its per-step metrics are strided in MLflow, so
curves come from its `metrics/history.json` at full resolution. Layout 1 runs
hold their full config and every step as metrics.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from rkdo_tune.config import FIELDS
from rkdo_tune.tracking import layout as lay

HISTORY_COLUMNS = ["run_id", "key", "step", "value"]
DOWNLOAD_WORKERS = 8


def layout_of(sweep_tags: Mapping[str, str]) -> int:
    """The sweep's run layout: its tag, or 1 for a sweep written before the tag."""
    text = sweep_tags.get(lay.TAG_LAYOUT, "")
    return int(text) if text.isdigit() else lay.LEGACY_LAYOUT


def fixed_settings(
    params: Mapping[str, str],
    specs: Mapping[str, dict[str, Any]],
    parse: Callable[[str, str], object],
) -> dict[str, object]:
    """Layout 2: the sweep run's TrialConfig fields, and each searched parameter's fallback."""
    fixed: dict[str, object] = {k: parse(k, v) for k, v in params.items() if k in FIELDS}
    for name, spec in specs.items():
        if lay.SPEC_FALLBACK in spec:
            fixed[name] = spec[lay.SPEC_FALLBACK]
    return fixed


def own_params(params: Mapping[str, str]) -> dict[str, str]:
    """A trial or seed run's params that are config values (not `log10_<name>`, not layout 1's
    `config.<field>`)."""
    return {
        k: v
        for k, v in params.items()
        if not k.startswith((lay.LOG10_PARAM_PREFIX, lay.CONFIG_PARAM_PREFIX))
    }


def history_rows(run_id: str, document: Mapping[str, Any], keys: tuple[str, ...]) -> list[tuple]:
    """(run_id, key, step, value) of `keys` in one history.json: per step, else per evaluation."""
    rows = []
    for key in keys:
        for steps, values in (
            (document.get("steps", []), document.get("train", {}).get(key)),
            (document.get("eval_steps", []), document.get("evals", {}).get(key)),
        ):
            if values:
                rows += [
                    (run_id, key, int(step), float("nan") if value is None else float(value))
                    for step, value in zip(steps, values, strict=False)
                ]
                break
    return rows


def artifact_histories(
    client: MlflowClient, run_ids: list[str], keys: tuple[str, ...]
) -> pd.DataFrame:
    """Long table of `keys` from each seed run's history.json (a run without one adds no rows)."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one bar per file

    def fetch(run_id: str) -> list[tuple]:
        with tempfile.TemporaryDirectory(prefix="rkdo-history-") as directory:
            try:
                path = client.download_artifacts(run_id, lay.ARTIFACT_HISTORY, directory)
            except (MlflowException, OSError):  # a seed that failed before its end wrote none
                return []
            document = json.loads(Path(path).read_text())
        return history_rows(run_id, document, keys)

    with ThreadPoolExecutor(max_workers=DOWNLOAD_WORKERS) as pool:
        rows = [row for rows in pool.map(fetch, run_ids) for row in rows]
    return pd.DataFrame(rows, columns=HISTORY_COLUMNS)
