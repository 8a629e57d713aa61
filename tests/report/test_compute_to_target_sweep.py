"""Compute-to-target end to end: a real sweep (CLI, local Ray, `mlflow server`) with the I-Con
baseline and step-granular evaluations, then `rkdo-tune report`. The report's target is the
baseline's final mean, and its step ratio and CI are recomputed here from the curves the seed
runs logged, with numpy and scipy only."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
from _support import sweep_then_report
from scipy import stats

from rkdo_tune import metrics as m
from rkdo_tune.tracking import layout as lay

pytestmark = [pytest.mark.slow, pytest.mark.ray]

SEEDS = (42, 123, 456)
EPOCHS, STEPS_PER_EPOCH, EVERY = 2, 5, 2
BUDGET = EPOCHS * STEPS_PER_EPOCH
SPACE = f"""
name: to_target
description: One RKDO configuration and the I-Con baseline, evaluated every {EVERY} steps.
metric: {{name: eval/linear_acc, mode: max}}
base:
  dataset: digits
  epochs: {EPOCHS}
  steps_per_epoch: {STEPS_PER_EPOCH}
  batch_size: 32
  protocol: paper
  eval_every_steps: {EVERY}
parameters:
  alpha: {{type: categorical, choices: [0.5]}}
search: {{algorithm: grid, seed: 0, num_samples: 1, max_concurrent: 2}}
scheduler: {{kind: none}}
repeats: {{seeds: {list(SEEDS)}}}
resources: {{cpus: 1, gpus: 0}}
"""


def _curves(client, experiment_id: str, trial_run) -> dict[int, tuple[list[int], list[float]]]:
    """{seed: (eval steps, eval/linear_acc)} as the trial's seed runs logged them."""
    runs = client.search_runs(
        [experiment_id], filter_string=f"tags.`{lay.TAG_PARENT}` = '{trial_run.info.run_id}'"
    )
    curves = {}
    for run in runs:
        points = sorted(
            (p.step, p.value) for p in client.get_metric_history(run.info.run_id, m.EVAL_LINEAR_ACC)
        )
        curves[int(run.data.tags[lay.TAG_SEED])] = ([s for s, _ in points], [v for _, v in points])
    return curves


def _steps_to(curve: tuple[list[int], list[float]], target: float) -> float:
    """The first eval step from which every later value is >= target, else the budget."""
    steps, values = curve
    stays = [s for i, s in enumerate(steps) if all(v >= target for v in values[i:])]
    return float(stays[0]) if stays else float(BUDGET)


@pytest.fixture(scope="module")
def study(tmp_path_factory, mlflow_server):
    from mlflow.tracking import MlflowClient

    folder = tmp_path_factory.mktemp("to-target")
    (folder / "space.yaml").write_text(SPACE)
    _, out = sweep_then_report(
        folder, space=str(folder / "space.yaml"), experiment="to_target", tracking_uri=mlflow_server
    )
    client = MlflowClient(tracking_uri=mlflow_server)
    experiment = client.get_experiment_by_name("to_target").experiment_id
    trials = client.search_runs(
        [experiment], filter_string=f"tags.`{lay.TAG_ROLE}` = '{lay.ROLE_TRIAL}'"
    )
    arm = {run.data.tags[lay.TAG_ARM]: run for run in trials}
    return {
        "out": out,
        "md": (out / "report.md").read_text(),
        "rkdo": _curves(client, experiment, arm["search"]),
        "icon": _curves(client, experiment, arm["baseline"]),
        "ids": (
            arm["search"].data.tags[lay.TAG_TRIAL_ID],
            arm["baseline"].data.tags[lay.TAG_TRIAL_ID],
        ),
    }


def _csv(path) -> list[dict[str, str]]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


def test_every_seed_run_logged_its_step_granular_curve(study):
    for arm in ("rkdo", "icon"):
        assert sorted(study[arm]) == list(SEEDS)
        for steps, _ in study[arm].values():
            assert steps == [2, 4, 5, 6, 8, 10]  # every 2 steps and each epoch's end


def test_the_target_is_the_baselines_final_mean_and_the_ratio_is_recomputed_by_hand(study):
    final_mean = float(np.mean([study["icon"][s][1][-1] for s in SEEDS]))
    rows = _csv(study["out"] / "compute_to_target_ratio.csv")
    assert float(rows[0]["target"]) == pytest.approx(final_mean, abs=1e-12)
    assert [float(r["fraction"]) for r in rows] == [1.0, 0.9, 0.95]
    assert f"≥ {final_mean:.4f} (the final seed-mean of the I-Con baseline" in study["md"]
    for row in rows:
        target = float(row["fraction"]) * final_mean
        rkdo = [_steps_to(study["rkdo"][s], target) for s in SEEDS]
        icon = [_steps_to(study["icon"][s], target) for s in SEEDS]
        logs = np.log(rkdo) - np.log(icon)
        assert float(row["ratio"]) == pytest.approx(math.exp(logs.mean()))
        for arm in ("rkdo", "icon"):  # "stays to the end": censored iff the last value misses
            missed = sum(study[arm][s][1][-1] < target for s in SEEDS)
            assert int(row[f"{arm}_censored"]) == missed
        if np.ptp(logs) == 0:
            lo = hi = math.exp(logs[0])
        else:
            ci = stats.bootstrap(
                (logs,),
                np.mean,
                n_resamples=9999,
                method="percentile",
                rng=np.random.default_rng(0),
            ).confidence_interval
            lo, hi = math.exp(ci.low), math.exp(ci.high)
        assert (float(row["ci_lo"]), float(row["ci_hi"])) == pytest.approx((lo, hi))
        assert int(row["distinct_resamples"]) == 10
    assert "10 distinct resamples: the interval is coarse" in study["md"]
    verdict = rows[0]["verdict_line"]
    assert f"{verdict}.**" in study["md"]
