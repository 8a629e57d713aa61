"""The Pareto view end to end: the packaged `pareto_alpha_depth` space, shrunk with --set, through
the real CLI, local Ray, Optuna's multi-objective study and an `mlflow server`, then
`rkdo-tune report`. The AUC every seed run logged, the values Optuna was told and the front the
report lists are recomputed here from the logged curves and seed means, with numpy only."""

from __future__ import annotations

import csv

import numpy as np
import optuna
import pytest
from _support import sweep_then_report

from rkdo_tune import metrics as m
from rkdo_tune.tracking import layout as lay

pytestmark = [pytest.mark.slow, pytest.mark.ray]

ACC, AUC = m.EVAL_LINEAR_ACC, m.EVAL_LINEAR_ACC_AUC
SEEDS = (42, 123)
SHRUNK = (  # 3 configurations and the control, 2 seeds, 10 steps evaluated 6 times
    "base.epochs=2",
    "base.steps_per_epoch=5",
    "base.eval_every_steps=2",
    "base.batch_size=32",
    "search.num_samples=3",
    f"repeats.seeds={list(SEEDS)}",
)


def _history(client, run_id: str, key: str) -> tuple[list[int], list[float]]:
    points = sorted((p.step, p.value) for p in client.get_metric_history(run_id, key))
    return [s for s, _ in points], [v for _, v in points]


@pytest.fixture(scope="module")
def study(tmp_path_factory, mlflow_server):
    from mlflow.tracking import MlflowClient

    folder = tmp_path_factory.mktemp("pareto")
    sets = [arg for text in SHRUNK for arg in ("--set", text)]
    _, out = sweep_then_report(
        folder,
        space="pareto_alpha_depth.yaml",
        experiment="pareto_e2e",
        tracking_uri=mlflow_server,
        extra=(*sets, "--optuna-storage", f"sqlite:///{folder}/optuna.db"),
    )
    client = MlflowClient(tracking_uri=mlflow_server)
    experiment = client.get_experiment_by_name("pareto_e2e").experiment_id
    runs = client.search_runs([experiment], max_results=500)
    by_role = {
        role: [r for r in runs if r.data.tags.get(lay.TAG_ROLE) == role]
        for role in (lay.ROLE_TRIAL, lay.ROLE_SEED)
    }
    return {
        "client": client,
        "out": out,
        "md": (out / "report.md").read_text(),
        "trials": by_role[lay.ROLE_TRIAL],
        "seeds": by_role[lay.ROLE_SEED],
        "optuna": optuna.load_study(
            study_name="pareto_e2e", storage=f"sqlite:///{folder}/optuna.db"
        ),
    }


def test_every_evaluation_carries_the_running_auc_of_its_curve(study):
    assert len(study["seeds"]) == 4 * len(SEEDS)
    for run in study["seeds"]:
        steps, acc = _history(study["client"], run.info.run_id, ACC)
        auc_steps, auc = _history(study["client"], run.info.run_id, AUC)
        assert steps == auc_steps == [2, 4, 5, 6, 8, 10]
        x, y = np.asarray(steps, float), np.asarray(acc)
        for k in range(len(x)):  # first value back to step 0, trapezoids, over the steps so far
            area = x[0] * y[0] + np.sum(np.diff(x[: k + 1]) * (y[1 : k + 1] + y[:k]) / 2)
            assert auc[k] == pytest.approx(area / x[k], abs=1e-12)


def test_optuna_ran_a_two_objective_study_told_the_seed_means(study):
    trials = study["optuna"].get_trials()
    assert len(study["optuna"].directions) == 2 and len(trials) == 3  # the control is not one
    means = {
        (float(r.data.params["alpha"]), int(r.data.params["depth"])): (
            r.data.metrics[f"{lay.MEAN_PREFIX}{ACC}"],
            r.data.metrics[f"{lay.MEAN_PREFIX}{AUC}"],
        )
        for r in study["trials"]
        if r.data.tags.get(lay.TAG_ARM) == "search"
    }
    assert trials[0].params == {"alpha": 0.5, "depth": 3}  # the reference point first
    for trial in trials:
        assert trial.state == optuna.trial.TrialState.COMPLETE
        expected = means[(trial.params["alpha"], trial.params["depth"])]
        assert trial.values == pytest.approx(list(expected), abs=1e-12)


def test_the_report_lists_the_front_recomputed_from_the_seed_means(study):
    seeds = {}
    for run in study["seeds"]:
        trial = run.data.tags[lay.TAG_TRIAL_ID]
        seeds.setdefault(trial, []).append((run.data.metrics[ACC], run.data.metrics[AUC]))
    means = {trial: np.mean(values, axis=0) for trial, values in seeds.items()}
    front = {
        t
        for t, p in means.items()
        if not any(np.all(q >= p) and np.any(q > p) for u, q in means.items() if u != t)
    }
    with (study["out"] / "pareto_front.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert {r["trial_id"] for r in rows if r["on_front"] == "True"} == front
    control = [r for r in study["trials"] if r.data.tags.get(lay.TAG_ARM) == "baseline"]
    control_id = control[0].data.tags[lay.TAG_TRIAL_ID]
    assert [r["trial_id"] for r in rows if r["control"] == "True"] == [control_id]
    md = study["md"]
    section = md.split("## Accuracy against compute: the Pareto front", 1)[1].split("\n## ")[0]
    table = [line for line in section.splitlines() if line.startswith("| ")][2:]
    assert {row.split(" | ")[0][2:].removesuffix(" (control)") for row in table} == front
    assert f"The I-Con control (trial {control_id})" in section
    assert "![Pareto front](pareto_front.png)" in md
    assert (study["out"] / "pareto_front.png").stat().st_size > 0
