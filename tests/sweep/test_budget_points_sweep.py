"""Budget points end to end: a real sweep (CLI, local Ray, `mlflow server`) of both objectives
trained once to 3 epochs with points at 1 and 2, then `rkdo-tune report`. Each point is a trial
run with its seed runs, whose final scores are those of a separately trained k-epoch run, and
the report pairs RKDO with I-Con by budget."""

from __future__ import annotations

import json

import pytest
from _support import sweep_then_report

from rkdo_tune import metrics as m
from rkdo_tune.config import TrialConfig
from rkdo_tune.tracking import layout as lay

pytestmark = [pytest.mark.slow, pytest.mark.ray]

SEEDS = (42, 123)
BASE = {"dataset": "digits", "steps_per_epoch": 3, "batch_size": 32, "protocol": "paper"}
SPACE = f"""
name: budget_points
description: Both objectives trained once to 3 epochs and scored at 1, 2 and 3.
metric: {{name: eval/linear_acc, mode: max}}
base: {json.dumps(BASE)}
parameters:
  objective: {{type: categorical, choices: [rkdo, icon]}}
budgets: {{epochs: [1, 2, 3]}}
search: {{algorithm: grid, seed: 0, num_samples: 2, max_concurrent: 2}}
scheduler: {{kind: none}}
repeats: {{seeds: {list(SEEDS)}}}
resources: {{cpus: 1, gpus: 0}}
"""


@pytest.fixture(scope="module")
def study(tmp_path_factory, mlflow_server):
    from mlflow.tracking import MlflowClient

    folder = tmp_path_factory.mktemp("budget-points")
    (folder / "space.yaml").write_text(SPACE)
    proc, out = sweep_then_report(
        folder,
        space=str(folder / "space.yaml"),
        experiment="budget_points",
        tracking_uri=mlflow_server,
    )
    client = MlflowClient(tracking_uri=mlflow_server)
    experiment = client.get_experiment_by_name("budget_points").experiment_id
    runs = client.search_runs([experiment], max_results=500)
    return {"stdout": proc.stdout, "md": (out / "report.md").read_text(), "runs": runs}


def _trial_runs(study) -> dict[str, object]:
    return {
        r.data.tags[lay.TAG_TRIAL_ID]: r
        for r in study["runs"]
        if r.data.tags.get(lay.TAG_ROLE) == lay.ROLE_TRIAL
    }


def test_each_budget_point_is_a_finished_trial_run_with_its_seed_runs(study):
    trials = _trial_runs(study)
    whole = {i: r for i, r in trials.items() if "@e" not in i}
    assert len(whole) == 2 and len(trials) == 6
    for trial_id, run in whole.items():
        for k in (1, 2):
            point = trials[f"{trial_id}@e{k}"]
            assert point.info.status == "FINISHED"
            assert point.data.tags[lay.TAG_BUDGET_OF] == run.info.run_id
            assert point.data.params["epochs"] == str(k)
            seeds = [
                r for r in study["runs"] if r.data.tags.get(lay.TAG_PARENT) == point.info.run_id
            ]
            assert sorted(int(r.data.tags[lay.TAG_SEED]) for r in seeds) == list(SEEDS)
            assert all(r.data.tags[lay.TAG_STATUS] == "completed" for r in seeds)


def test_a_budget_points_seed_run_holds_what_a_k_epoch_run_ends_with(study):
    """The strong claim: train a 1-epoch run of seed 123 here and compare every final score."""
    from rkdo_tune.training import train

    trials = _trial_runs(study)
    (rkdo,) = [
        i for i, r in trials.items() if "@e" not in i and r.data.params.get("objective") == "rkdo"
    ]
    point = trials[f"{rkdo}@e1"]
    (seed_run,) = [
        r
        for r in study["runs"]
        if r.data.tags.get(lay.TAG_PARENT) == point.info.run_id
        and r.data.tags[lay.TAG_SEED] == "123"
    ]
    short = train(TrialConfig(**BASE, objective="rkdo", epochs=1, seed=123, device="cpu"))
    for key in (m.EVAL_LINEAR_ACC, m.EVAL_KNN_ACC, m.EVAL_NMI, m.TRAIN_EPOCH_LOSS, m.DIAG_STEPS):
        assert seed_run.data.metrics[key] == pytest.approx(short.metrics[key], rel=1e-6), key


def test_the_sweep_and_the_report_pair_the_objectives_by_budget(study):
    assert "sweep budget_points: 6 configurations, 0 errors" in study["stdout"]
    md = study["md"]
    trials = _trial_runs(study)
    objective = {i: r.data.params.get("objective") for i, r in trials.items() if "@e" not in i}
    rkdo = next(i for i, o in objective.items() if o == "rkdo")
    icon = next(i for i, o in objective.items() if o == "icon")
    for k in (1, 2):
        assert f"### RKDO {rkdo}@e{k} vs I-Con {icon}@e{k}" in md
