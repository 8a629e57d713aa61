"""Reads one sweep out of MLflow into plain pandas tables, for `rkdo-tune report`.

Layout read (written by rkdo_tune.tracking, every name from `layout`): a parent
run per sweep (role sweep), a child run per trial (role trial) and a child of
that per seed (role seed). Params come back as strings, so each is parsed by
its TrialConfig field type. Both run layouts are read (`_read_layout`): in layout 2
the fixed settings come from the sweep run and curves from each seed's history.json.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Hashable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import Run
from mlflow.exceptions import MlflowException

from rkdo_tune import metrics as m
from rkdo_tune.config import FIELDS, field_kind
from rkdo_tune.errors import UsageError
from rkdo_tune.sweep.protocol import TrialRole
from rkdo_tune.sweep.protocol import budget_source as budget_source  # for the report
from rkdo_tune.tracking import layout as lay
from rkdo_tune.tracking._client import (
    ENDED_BADLY,
    NEWEST_FIRST,
    log_metrics,
    make_metric,
    now_ms,
    open_client,
    search_runs,
)
from rkdo_tune.tracking._read_layout import (
    artifact_histories,
    fixed_settings,
    layout_of,
    own_params,
)
from rkdo_tune.tracking._references import RecordedEvidence, read_evidence
from rkdo_tune.tracking._uri import check_reachable, resolve_tracking_uri, sqlite_path
from rkdo_tune.tracking.links import link_lines, trial_links
from rkdo_tune.verdict import ARM_SEARCH, STAGE_SEARCH

HEALTH_TIMEOUT_S = 5.0
HISTORY_WORKERS = 8

# A param parsed back from its MLflow string.
ParamValue = bool | int | float | str | None
# A searched parameter's spec as the sweep run logged it (type, low, high, choices, when, ...).
ParameterSpec = dict[str, ParamValue | list[ParamValue] | dict[str, list[ParamValue]]]


@dataclass(frozen=True)
class SweepInfo:
    """The parent run of one sweep: what was searched, for which metric."""

    run_id: str
    experiment_id: str
    experiment_name: str
    sweep_name: str
    space_name: str
    metric: str
    mode: str
    best_trial_id: str
    parameter_specs: dict[str, ParameterSpec] = field(default_factory=dict)
    # Layout 1: the space's `base` keys; layout 2: every fixed setting and searched fallback.
    base: dict[str, ParamValue] = field(default_factory=dict)
    seeds: tuple[int, ...] = ()
    baseline_trial_id: str = ""
    confirmed_trial_ids: tuple[str, ...] = ()  # search trials the sweep re-ran on fresh seeds
    layout: int = lay.LEGACY_LAYOUT  # the run layout it was written in (`layout`)
    # Every objective (name, mode) the search optimised, primary first; () reads as the
    # metric and mode alone. Several: a multi-objective search, and the report's Pareto view.
    objectives: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class SweepRuns:
    """One sweep as tables.

    seeds: one row per seed run (run_id, trial_id, seed, status, the TrialConfig
    fields parsed, and the final value of every metric under its metric name).
    history: long table (run_id, key, step, value) of the step histories loaded.
    trial_params: the sampled params of each trial, by trial id.
    trial_status: the trial run's `rkdo.status`, by trial id.
    trial_roles: the trial run's arm, stage and the search trial it re-runs, by trial id
    (sweeps older than these tags read as search arm, search stage).
    """

    info: SweepInfo
    seeds: pd.DataFrame
    history: pd.DataFrame
    trial_params: dict[str, dict[str, ParamValue]]
    trial_status: dict[str, str]
    trial_roles: dict[str, TrialRole] = field(default_factory=dict)


def resolve_report_uri(uri: str | None) -> str:
    """--tracking-uri, else MLFLOW_TRACKING_URI, else ./mlflow.db: the sweep's own rule."""
    return resolve_tracking_uri(uri, environ=os.environ, cwd=Path.cwd())


def connect(uri: str) -> MlflowClient:
    """A client for `uri`, after failing fast on an unreachable server or a missing store."""
    check_reachable(uri, timeout=HEALTH_TIMEOUT_S)
    path = sqlite_path(uri)
    if path is not None and not path.is_file():  # MLflow would silently create an empty store
        raise UsageError(
            f"--tracking-uri: no MLflow store at {uri} (file {path} does not exist); "
            "pass --tracking-uri or set MLFLOW_TRACKING_URI"
        )
    return open_client(uri)  # a fresh store is never migrated by two processes at once


def find_sweeps(
    client: MlflowClient, *, experiment: str | None, sweep: str | None
) -> list[SweepInfo]:
    """Sweep parents, newest first: the one `sweep` run id, or every sweep of `experiment`."""
    if sweep:
        run = _get_run(client, sweep)
        role = run.data.tags.get(lay.TAG_ROLE)
        if role != lay.ROLE_SWEEP:
            raise UsageError(f"--sweep: run {sweep} is not a sweep parent ({lay.TAG_ROLE}={role})")
        return [_sweep_info(client, run)]
    found = client.get_experiment_by_name(experiment)
    if found is None:
        raise UsageError(f"--experiment: no MLflow experiment named '{experiment}'")
    parents = search_runs(
        client, found.experiment_id, tags={lay.TAG_ROLE: lay.ROLE_SWEEP}, order_by=NEWEST_FIRST
    )
    infos = [_sweep_info(client, run, experiment_name=found.name) for run in parents]
    if not infos:
        raise UsageError(f"--experiment: experiment '{experiment}' has no sweep runs")
    return infos


def _get_run(client: MlflowClient, run_id: str) -> Run:
    try:
        return client.get_run(run_id)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise UsageError(f"--sweep: no MLflow run with id '{run_id}'") from None
        raise


def _sweep_info(client: MlflowClient, run: Run, *, experiment_name: str | None = None) -> SweepInfo:
    tags, params = run.data.tags, run.data.params
    metric = tags.get(lay.TAG_METRIC) or m.EVAL_LINEAR_ACC
    specs = {k: _parse_spec(text) for k, text in _under(params, lay.SPEC_PARAM_PREFIX).items()}
    base = {k: parse_param(k, text) for k, text in _under(params, lay.BASE_PARAM_PREFIX).items()}
    layout = layout_of(tags)
    if layout >= lay.LAYOUT_VERSION:  # `base` is every fixed setting, to merge into seed rows
        base = fixed_settings(params, specs, parse_param)
        specs = {
            k: {f: v for f, v in s.items() if f != lay.SPEC_FALLBACK} for k, s in specs.items()
        }
    name = experiment_name or client.get_experiment(run.info.experiment_id).name
    return SweepInfo(
        run_id=run.info.run_id,
        experiment_id=run.info.experiment_id,
        experiment_name=name,
        sweep_name=tags.get(lay.TAG_SWEEP_NAME) or run.info.run_name or run.info.run_id,
        space_name=tags.get(lay.TAG_SPACE_NAME, name),
        metric=metric,
        mode=tags.get(lay.TAG_MODE) or m.MODE_OF.get(metric, "max"),
        best_trial_id=tags.get(lay.TAG_BEST_TRIAL_ID, ""),
        parameter_specs=specs,
        base=base,
        layout=layout,
        seeds=tuple(int(s) for s in re.findall(r"-?\d+", params.get(lay.PARAM_SEEDS, ""))),
        baseline_trial_id=tags.get(lay.TAG_BASELINE_TRIAL_ID, ""),
        confirmed_trial_ids=tuple(
            t.strip() for t in tags.get(lay.TAG_CONFIRMED_TRIAL_IDS, "").split(",") if t.strip()
        ),
        objectives=_objectives(tags.get(lay.TAG_OBJECTIVES, "")),
    )


def _objectives(text: str) -> tuple[tuple[str, str], ...]:
    """The objectives tag's [[name, mode], ...]; () when absent or not of that shape."""
    try:
        pairs = json.loads(text) if text else []
    except json.JSONDecodeError:
        return ()
    if not isinstance(pairs, list):
        return ()
    shaped = [p for p in pairs if isinstance(p, list) and len(p) == 2 and p[1] in ("max", "min")]
    return tuple((str(n), str(mo)) for n, mo in shaped) if len(shaped) == len(pairs) else ()


def _under(params: Mapping[str, str], prefix: str) -> dict[str, str]:
    """The params whose key starts with `prefix`, keyed by the rest of the key."""
    return {key.removeprefix(prefix): v for key, v in params.items() if key.startswith(prefix)}


def _parse_spec(text: str) -> ParameterSpec:
    try:
        spec = json.loads(text)
    except json.JSONDecodeError:
        return {}
    return spec if isinstance(spec, dict) else {}


def parse_param(name: str, text: str) -> ParamValue:
    """An MLflow param string back to its value: typed by the config field when there is one."""
    if text == "None":
        return None
    kind = field_kind(name) if name in FIELDS else None
    if kind is str:
        return text
    if kind is bool or text in ("True", "False"):
        return text == "True"
    for convert in (kind, int, float) if kind in (int, float) else (int, float):
        try:
            return convert(text)
        except ValueError:
            continue
    return text


def load_sweep(
    client: MlflowClient, info: SweepInfo, *, history_keys: tuple[str, ...]
) -> SweepRuns:
    """Every trial and seed run of one sweep, with the step histories of `history_keys`."""
    children = {lay.TAG_PARENT: info.run_id, lay.TAG_ROLE: lay.ROLE_TRIAL}
    trials = search_runs(client, info.experiment_id, tags=children, order_by=NEWEST_FIRST)
    trials = _latest_of_each(trials, key=_trial_id)
    trial_of_run = {run.info.run_id: _trial_id(run) for run in trials}
    every_seed = search_runs(
        client, info.experiment_id, tags={lay.TAG_ROLE: lay.ROLE_SEED}, order_by=NEWEST_FIRST
    )
    seed_runs = _latest_of_each(
        [run for run in every_seed if run.data.tags.get(lay.TAG_PARENT) in trial_of_run],
        key=lambda run: (
            trial_of_run[run.data.tags[lay.TAG_PARENT]],
            run.data.tags.get(lay.TAG_SEED),
        ),
    )
    fixed = info.base if info.layout >= lay.LAYOUT_VERSION else {}
    rows = [
        _seed_row(run, trial_of_run[run.data.tags[lay.TAG_PARENT]], fixed=fixed)
        for run in seed_runs
    ]
    seeds = pd.DataFrame(rows)
    if not seeds.empty:
        seeds = seeds.sort_values(["trial_id", "seed"], ignore_index=True)
    # Layout 2 strides per-step metrics in MLflow: curves come from each seed's history.json.
    histories = artifact_histories if info.layout >= lay.LAYOUT_VERSION else _histories
    history = histories(client, [run.info.run_id for run in seed_runs], history_keys)
    trial_params = {
        _trial_id(run): {k: parse_param(k, v) for k, v in own_params(run.data.params).items()}
        for run in trials
    }
    trial_status = {_trial_id(run): run.data.tags.get(lay.TAG_STATUS, "") for run in trials}
    roles = {_trial_id(run): _trial_role(run) for run in trials}
    return SweepRuns(info, seeds, history, trial_params, trial_status, roles)


def _trial_role(run: Run) -> TrialRole:
    tags = run.data.tags
    return TrialRole(
        arm=tags.get(lay.TAG_ARM) or ARM_SEARCH,
        stage=tags.get(lay.TAG_STAGE) or STAGE_SEARCH,
        confirms=tags.get(lay.TAG_CONFIRMS, ""),
    )


def _latest_of_each(runs: list[Run], *, key: Callable[[Run], Hashable]) -> list[Run]:
    """One run per key: a resumed trial leaves its interrupted run (KILLED/FAILED) behind."""
    chosen: dict[Hashable, Run] = {}
    for run in runs:
        held = chosen.get(key(run))
        if held is None or _preference(run) > _preference(held):
            chosen[key(run)] = run
    return list(chosen.values())


def _preference(run: Run) -> tuple[bool, int]:
    """Runs that did not end interrupted first, then the most recently started."""
    return run.info.status not in ENDED_BADLY, run.info.start_time or 0


def _trial_id(run: Run) -> str:
    return run.data.tags.get(lay.TAG_TRIAL_ID) or run.info.run_name or run.info.run_id


def _seed_row(run: Run, trial_id: str, *, fixed: Mapping[str, ParamValue]) -> dict[str, ParamValue]:
    """Columns run_id, trial_id, the TrialConfig params, seed, status, then the final metrics.

    `fixed`: the sweep's fixed settings (layout 2), under the seed run's own params."""
    own = {key: parse_param(key, value) for key, value in own_params(run.data.params).items()}
    params = {**fixed, **own}
    tags = run.data.tags
    seed = params.get("seed", tags.get(lay.TAG_SEED))  # the TrialConfig field, else the tag
    return {
        "run_id": run.info.run_id,
        "trial_id": trial_id,
        **params,
        "seed": int(seed) if seed is not None else -1,
        "status": tags.get(lay.TAG_STATUS, run.info.status.lower()),
        **run.data.metrics,
    }


def _histories(client: MlflowClient, run_ids: list[str], keys: tuple[str, ...]) -> pd.DataFrame:
    """Long table of metric histories; fetched in parallel since each is one request."""
    jobs = [(run_id, key) for run_id in run_ids for key in keys]

    def fetch(job: tuple[str, str]) -> list[tuple[str, str, int, float]]:
        run_id, key = job
        return [(run_id, key, p.step, p.value) for p in client.get_metric_history(run_id, key)]

    with ThreadPoolExecutor(max_workers=HISTORY_WORKERS) as pool:
        points = [row for rows in pool.map(fetch, jobs) for row in rows]
    return pd.DataFrame(points, columns=["run_id", "key", "step", "value"])


def recorded_evidence(client: MlflowClient, info: SweepInfo) -> RecordedEvidence:
    """The floors, their note and the primary endpoint that the sweep run recorded."""
    return read_evidence(_get_run(client, info.run_id))


def log_report(client: MlflowClient, *, run_id: str, directory: Path) -> str:
    """Upload the report folder to the parent run under `report/`; returns its artifact URI."""
    client.log_artifacts(run_id, str(directory), artifact_path=lay.ARTIFACT_REPORT_DIR)
    return f"{client.get_run(run_id).info.artifact_uri}/{lay.ARTIFACT_REPORT_DIR}"


def log_seed_metrics(client: MlflowClient, values: Mapping[str, Mapping[str, float]]) -> None:
    """Log {seed run id: {metric: value}} onto finished seed runs (the report's own numbers)."""
    stamp = now_ms()
    for run_id, metrics in values.items():
        log_metrics(client, run_id, [make_metric(k, v, 0, stamp) for k, v in metrics.items()])


def ui_link_lines(uri: str, info: SweepInfo) -> list[str]:
    """Links to the sweep's trial runs in the MLflow UI (layout 2 sweeps: they need the rank)."""
    if info.layout < lay.LAYOUT_VERSION:
        return []
    links = trial_links(
        uri,
        experiment_id=info.experiment_id,
        parent_run_id=info.run_id,
        confirmation=bool(info.confirmed_trial_ids),
    )
    return link_lines(links)
