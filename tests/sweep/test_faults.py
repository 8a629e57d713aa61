"""A trial that raises or diverges ends FAILED/DIVERGED with its reason; the others carry on."""

from __future__ import annotations

import pytest
from _support import run_cli

pytestmark = [pytest.mark.slow, pytest.mark.ray]

SPACE = """
name: faults
description: Four trials, two that raise at step 3, one whose loss turns NaN at step 4.
metric: {name: eval/linear_acc, mode: max}
base: {dataset: digits, epochs: 2, steps_per_epoch: 4}
parameters:
  debug_raise_at_step: {type: categorical, choices: [3, 1000]}
  debug_nan_at_step: {type: categorical, choices: [4, 1000]}
search: {algorithm: grid, max_concurrent: 2}
repeats: 1
resources: {cpus: 1, gpus: 0}
"""


def test_failures_are_isolated_reported_and_never_a_best_value(tmp_path, mlflow_server):
    import optuna
    from mlflow.tracking import MlflowClient

    space = tmp_path / "faults.yaml"
    space.write_text(SPACE)
    optuna_db = f"sqlite:///{tmp_path / 'optuna.db'}"
    proc = run_cli(
        "sweep",
        "--space",
        str(space),
        "--name",
        "faults",
        "--storage",
        str(tmp_path / "results"),
        "--tracking-uri",
        mlflow_server,
        "--experiment",
        "faults",
        "--optuna-storage",
        optuna_db,
        "--max-failures",
        "1",
        cwd=tmp_path,
    )
    out = proc.stdout
    assert proc.returncode == 0, out[-2000:] + proc.stderr[-3000:]
    assert "4 configurations and the I-Con baseline, 2 errors" in out
    assert "injected failure at step 3" in out
    assert "diverged" in out and "non-finite loss nan at step 4" in out

    study = optuna.load_study(study_name="faults", storage=optuna_db)
    states = sorted(t.state.name for t in study.trials)
    assert states == ["COMPLETE", "FAIL", "FAIL", "FAIL"]
    assert study.best_trial.params == {"debug_raise_at_step": 1000, "debug_nan_at_step": 1000}

    client = MlflowClient(tracking_uri=mlflow_server)
    experiment = client.get_experiment_by_name("faults")
    trials = client.search_runs([experiment.experiment_id], "tags.`rkdo.role` = 'trial'")
    failed = [r for r in trials if r.info.status == "FAILED"]
    assert failed and all("injected failure" in r.data.tags["rkdo.reason"] for r in failed)
    runs_per_failed_trial = {r.data.tags["trial_id"] for r in failed}
    assert (
        len(failed) == 2 * len(runs_per_failed_trial) == 4
    )  # each retried once (--max-failures 1)
    diverged = [r for r in trials if r.data.tags.get("rkdo.status") == "diverged"]
    assert len(diverged) == 1 and "non-finite" in diverged[0].data.tags["rkdo.reason"]
