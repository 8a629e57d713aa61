"""The sweep's parent run: created (or, on --resume, reattached) in the driver before Ray starts.

The experiment is created here, once, and never by a worker: concurrent
trials racing to create it is a known MLflow failure (mlflow#4123).
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
from pathlib import Path
from typing import Any

import yaml

import rkdo_tune
from rkdo_tune.errors import UsageError
from rkdo_tune.protocols import PROTOCOL_VERSION
from rkdo_tune.redaction import redact_uri, scrub
from rkdo_tune.sweep.protocol import Parameter, SearchSpace, SweepPlan, trial_device
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


def fixed_settings(space: SearchSpace) -> dict[str, Any]:
    """The TrialConfig fields no trial samples (the seed aside), with the values they take.

    They are params of the sweep run only, under their plain names; a trial run
    carries a field only where it differs (its searched values, the baseline's keys).
    """
    searched = {p.name for p in space.parameters}
    fixed = {
        name: value
        for name, value in space.base_config.to_dict().items()
        if name not in searched and name != lay.PARAM_SEED
    }
    if "device" in fixed:  # as the trials run it
        fixed["device"] = trial_device(fixed["device"], space)
    return fixed


def space_params(space: SearchSpace) -> dict[str, Any]:
    """The parent run's params: the fixed settings under their plain names, then the rest of
    the resolved space as `<section>.<key>`; each searched parameter's spec (a tuned
    baseline's among them) also names its fallback (the value where it is not sampled)."""
    resolved = resolved_space(space)
    params: dict[str, Any] = fixed_settings(space)
    for section in ("search", "scheduler", "resources"):
        params.update({f"{section}.{k}": v for k, v in resolved[section].items()})
    params[lay.PARAM_SEEDS] = ",".join(str(s) for s in space.seeds)
    base = space.base_config.to_dict()
    for p in space.searched_parameters:  # a tuned baseline's knobs too: the report's columns
        spec = {**parameter_spec(p), lay.SPEC_FALLBACK: base[p.name]}
        params[f"{lay.SPEC_PARAM_PREFIX}{p.name}"] = spec
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
        lay.TAG_OBJECTIVES: json.dumps([[o.name, o.mode] for o in space.objectives]),
        lay.TAG_VERSION: rkdo_tune.__version__,
        lay.TAG_PROTOCOL_VERSION: str(PROTOCOL_VERSION),
        lay.TAG_LAYOUT: str(lay.LAYOUT_VERSION),
    }
    sha = git_sha()
    return {**tags, lay.TAG_GIT_SHA: sha} if sha else tags


def ensure_experiment(client: MlflowClient, name: str, *, uri: str) -> str:
    """The id of experiment `name`, created if absent (in the driver only), of the training kind.

    MLflow 3's UI reads `mlflow.experimentKind`; an experiment created without it
    (by an older rkdo-tune) gets it too, unless someone set another kind.
    """
    kind = {lay.EXPERIMENT_KIND_TAG: lay.EXPERIMENT_KIND_TRAINING}
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        try:
            return client.create_experiment(name, tags=kind)
        except MlflowException:  # another driver created it meanwhile
            experiment = client.get_experiment_by_name(name)
            if experiment is None:
                raise
    if experiment.lifecycle_stage == "deleted":
        raise UsageError(
            f"--experiment {name}: the experiment is deleted in {redact_uri(uri)}; "
            "restore it (mlflow experiments restore) or choose another name"
        )
    if lay.EXPERIMENT_KIND_TAG not in experiment.tags:
        kind_tag = (lay.EXPERIMENT_KIND_TAG, lay.EXPERIMENT_KIND_TRAINING)
        client.set_experiment_tag(experiment.experiment_id, *kind_tag)
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


def _check_layout(parent: Run, plan: SweepPlan) -> None:
    """Refuse to resume a sweep written in another run layout (never mix two in one sweep)."""
    stored = parent.data.tags.get(lay.TAG_LAYOUT, str(lay.LEGACY_LAYOUT))
    if stored != str(lay.LAYOUT_VERSION):
        raise UsageError(
            f"--resume --name {plan.name}: this sweep's MLflow runs use run layout {stored} and "
            f"this rkdo-tune writes layout {lay.LAYOUT_VERSION}, which would mix two layouts in "
            "one sweep; start a new sweep with another --name (the report still reads the old one)"
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
        _check_layout(found[0], plan)
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
