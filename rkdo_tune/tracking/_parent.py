"""The sweep's parent run: created (or, on --resume, reattached) in the driver before Ray starts.

The experiment is created here, once, and never by a worker: concurrent
trials racing to create it is a known MLflow failure (mlflow#4123).
"""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path
from typing import Any

import yaml

import rkdo_tune
from rkdo_tune.errors import UsageError
from rkdo_tune.protocols import PROTOCOL_VERSION
from rkdo_tune.redaction import redact_uri, scrub
from rkdo_tune.sweep.protocol import Parameter, SearchSpace, SweepPlan
from rkdo_tune.tracking import layout as lay
from rkdo_tune.tracking._client import (
    RUNNING,
    MlflowClient,
    MlflowException,
    Run,
    create_run,
    log_params,
    search_runs,
    set_tags,
)

GIT_TIMEOUT_S = 3


def parameter_spec(parameter: Parameter) -> dict[str, Any]:
    """A search parameter as the YAML would write it, defaults left out."""
    spec: dict[str, Any] = {"type": parameter.kind}
    for key in ("low", "high", "step"):
        if getattr(parameter, key) is not None:
            spec[key] = getattr(parameter, key)
    if parameter.log:
        spec["log"] = True
    if parameter.choices:
        spec["choices"] = list(parameter.choices)
    if parameter.when:
        spec["when"] = {key: list(values) for key, values in parameter.when.items()}
    return spec


def resolved_space(space: SearchSpace) -> dict[str, Any]:
    """The space with every default filled in, in the YAML schema (loadable again)."""
    search = dataclasses.asdict(space.search)
    search["points_to_evaluate"] = [dict(p) for p in space.search.points_to_evaluate]
    return {
        "name": space.name,
        "description": space.description,
        "metric": {"name": space.metric, "mode": space.mode},
        "base": dict(space.base),
        "parameters": {p.name: parameter_spec(p) for p in space.parameters},
        "search": search,
        "scheduler": dataclasses.asdict(space.scheduler),
        "repeats": {"seeds": list(space.seeds)},
        "resources": dataclasses.asdict(space.resources),
    }


def space_params(space: SearchSpace) -> dict[str, Any]:
    """The parent run's params: the resolved space flattened to `<section>.<key>`."""
    resolved = resolved_space(space)
    params: dict[str, Any] = {}
    params.update({f"{lay.BASE_PARAM_PREFIX}{k}": v for k, v in resolved["base"].items()})
    for section in ("search", "scheduler", "resources"):
        params.update({f"{section}.{k}": v for k, v in resolved[section].items()})
    params[lay.PARAM_SEEDS] = ",".join(str(s) for s in space.seeds)
    params.update({f"{lay.SPEC_PARAM_PREFIX}{k}": v for k, v in resolved["parameters"].items()})
    return {**params, "metric": space.metric, "mode": space.mode}


def git_sha() -> str | None:
    """HEAD of the repository holding this package, if it is a git checkout."""
    repo = Path(rkdo_tune.__file__).resolve().parent.parent
    try:
        done = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    sha = done.stdout.strip()
    return sha if done.returncode == 0 and sha else None


def parent_tags(space: SearchSpace, plan: SweepPlan) -> dict[str, str]:
    tags = {
        lay.TAG_ROLE: lay.ROLE_SWEEP,
        lay.TAG_SWEEP_NAME: plan.name,
        lay.TAG_SPACE_NAME: space.name,
        lay.TAG_METRIC: space.metric,
        lay.TAG_MODE: space.mode,
        lay.TAG_VERSION: rkdo_tune.__version__,
        lay.TAG_PROTOCOL_VERSION: str(PROTOCOL_VERSION),
    }
    sha = git_sha()
    return {**tags, lay.TAG_GIT_SHA: sha} if sha else tags


def ensure_experiment(client: MlflowClient, name: str, *, uri: str) -> str:
    """The id of experiment `name`, created if absent (in the driver only)."""
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        try:
            return client.create_experiment(name)
        except MlflowException:  # another driver created it meanwhile
            experiment = client.get_experiment_by_name(name)
            if experiment is None:
                raise
    if experiment.lifecycle_stage == "deleted":
        raise UsageError(
            f"--experiment {name}: the experiment is deleted in {redact_uri(uri)}; "
            "restore it (mlflow experiments restore) or choose another name"
        )
    return experiment.experiment_id


def _children(client: MlflowClient, experiment_id: str, run_id: str) -> list[Run]:
    return search_runs(client, experiment_id, tags={lay.TAG_PARENT: run_id})


def _check_protocol_version(parent: Run, plan: SweepPlan) -> None:
    """Refuse to resume a sweep whose trials ran another protocol version (never mix two)."""
    stored = parent.data.tags.get(lay.TAG_PROTOCOL_VERSION, "1")  # 1: recorded before the tag
    if stored != str(PROTOCOL_VERSION):
        raise UsageError(
            f"--resume --name {plan.name}: this sweep was recorded under protocol version "
            f"{stored} and this rkdo-tune runs version {PROTOCOL_VERSION} (rkdo_tune/protocols.py"
            "), so its trials would not compare; start a new sweep with another --name"
        )


def _existing_parent(
    client: MlflowClient, experiment_id: str, plan: SweepPlan, *, resume: bool
) -> str | None:
    """The parent run to reattach to, or None to create one."""
    found = search_runs(
        client,
        experiment_id,
        tags={lay.TAG_ROLE: lay.ROLE_SWEEP, lay.TAG_SWEEP_NAME: plan.name},
    )
    if not found:
        return None
    run_id = found[0].info.run_id
    if resume:
        _check_protocol_version(found[0], plan)
        return run_id
    if _children(client, experiment_id, run_id):
        raise UsageError(
            f"--name {plan.name}: experiment {experiment_id} already holds this sweep "
            f"(MLflow run {run_id}); add --resume to continue it, or choose another --name"
        )
    # An earlier attempt that never launched a trial: replace it, keeping one parent.
    client.delete_run(run_id)
    return None


def _log_space_artifacts(client: MlflowClient, run_id: str, space: SearchSpace) -> None:
    """space/space.yaml (resolved) and space/<file> (as given), unless already there."""
    if client.list_artifacts(run_id, lay.ARTIFACT_SPACE_DIR):
        return
    resolved = yaml.safe_dump(resolved_space(space), sort_keys=False)
    client.log_text(run_id, scrub(resolved), lay.ARTIFACT_RESOLVED_SPACE)
    original = Path(space.source)
    client.log_text(
        run_id, scrub(original.read_text()), f"{lay.ARTIFACT_SPACE_DIR}/{original.name}"
    )


def open_parent_run(
    client: MlflowClient,
    *,
    experiment_id: str,
    space: SearchSpace,
    plan: SweepPlan,
    resume: bool,
) -> str:
    """Create the sweep's parent run, or reattach to it on --resume; returns its id."""
    run_id = _existing_parent(client, experiment_id, plan, resume=resume)
    if run_id is None:
        run_id = create_run(
            client,
            experiment_id=experiment_id,
            run_name=plan.name,
            tags=parent_tags(space, plan),
        )
    else:
        client.update_run(run_id, status=RUNNING)
        set_tags(client, run_id, parent_tags(space, plan))
    log_params(client, run_id, space_params(space))  # only keys not yet logged
    _log_space_artifacts(client, run_id, space)
    return run_id
