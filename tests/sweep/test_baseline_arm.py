"""A sweep with the I-Con control arm and a confirmation stage, through the real CLI,
a real local Ray and a real `mlflow server`: the arm is one more Tune trial that Optuna
never sees and ASHA never stops, and the verdict on the sweep run is scipy's over the
confirmation's fresh seeds."""

from __future__ import annotations

import csv
import math

import pytest
from _support import expected_p_values, run_cli
from scipy import stats

from rkdo_tune import metrics as m
from rkdo_tune.tracking import layout as lay

pytestmark = [pytest.mark.slow, pytest.mark.ray]

SPACE = """
name: arms
description: Three RKDO alphas, the I-Con arm, ASHA, and the top one confirmed on fresh seeds.
metric: {name: eval/linear_acc, mode: max}
base: {dataset: digits, epochs: 3, steps_per_epoch: 3, batch_size: 32, protocol: full}
parameters:
  alpha: {type: float, low: 0.1, high: 0.9}
search: {algorithm: random, seed: 0, num_samples: 3, max_concurrent: 2}
scheduler: {kind: asha, grace_period: 1, reduction_factor: 2}
repeats: {seeds: [42, 123, 456]}
confirm: {top: 1, seeds: [7, 8, 9]}
resources: {cpus: 1, gpus: 0}
"""
SEEDS = (7, 8, 9)


def _final_values(client, trial_run) -> dict[int, dict[str, float]]:
    seeds = client.search_runs(
        [trial_run.info.experiment_id],
        filter_string=f"tags.`{lay.TAG_PARENT}` = '{trial_run.info.run_id}'",
    )
    return {int(run.data.tags[lay.TAG_SEED]): dict(run.data.metrics) for run in seeds}


def test_baseline_arm_and_confirmation_end_in_scipys_verdict(tmp_path, mlflow_server):
    import optuna
    from mlflow.tracking import MlflowClient

    (tmp_path / "arms.yaml").write_text(SPACE)
    optuna_db = f"sqlite:///{tmp_path / 'optuna.db'}"
    proc = run_cli(
        "sweep",
        *("--space", str(tmp_path / "arms.yaml"), "--name", "arms"),
        *("--storage", str(tmp_path / "results"), "--tracking-uri", mlflow_server),
        *("--experiment", "arms", "--optuna-storage", optuna_db),
        cwd=tmp_path,
    )
    out = proc.stdout
    assert proc.returncode == 0, out[-3000:] + proc.stderr[-3000:]
    assert "3 configurations and the I-Con baseline, 0 errors" in out
    assert "statistically tied with the best" in out
    assert "Verdict: RKDO (α = " in out and "over 3 confirmation seeds (7, 8, 9)" in out

    # Optuna proposed and was told exactly the three searched configurations.
    study = optuna.load_study(study_name="arms", storage=optuna_db)
    assert len(study.trials) == 3 and all(t.state.name == "COMPLETE" for t in study.trials)

    client = MlflowClient(tracking_uri=mlflow_server)
    experiment = client.get_experiment_by_name("arms")
    runs = client.search_runs([experiment.experiment_id], max_results=500)
    sweep = next(r for r in runs if r.data.tags.get(lay.TAG_ROLE) == lay.ROLE_SWEEP)
    trials = [r for r in runs if r.data.tags.get(lay.TAG_ROLE) == lay.ROLE_TRIAL]
    by_stage_arm = {}
    for run in trials:
        key = (run.data.tags[lay.TAG_STAGE], run.data.tags[lay.TAG_ARM])
        by_stage_arm.setdefault(key, []).append(run)
    assert sorted((k, len(v)) for k, v in by_stage_arm.items()) == [
        (("confirmation", "baseline"), 1),
        (("confirmation", "search"), 1),
        (("search", "baseline"), 1),
        (("search", "search"), 3),
    ]
    baseline = by_stage_arm["search", "baseline"][0]
    assert sweep.data.tags[lay.TAG_BASELINE_TRIAL_ID] == baseline.data.tags[lay.TAG_TRIAL_ID]
    # The baseline trains its full budget on every seed: ASHA never stops it.
    assert all(values[m.DIAG_STEPS] == 9 for values in _final_values(client, baseline).values())

    confirmed_best = by_stage_arm["confirmation", "search"][0]
    assert confirmed_best.data.tags[lay.TAG_CONFIRMS] == sweep.data.tags[lay.TAG_BEST_TRIAL_ID]
    rkdo = _final_values(client, confirmed_best)
    icon = _final_values(client, by_stage_arm["confirmation", "baseline"][0])
    assert sorted(rkdo) == sorted(icon) == list(SEEDS)

    logged = sweep.data.metrics
    pairs = {}
    for metric in m.VERDICT_METRICS:
        a = [rkdo[s][metric] for s in SEEDS]
        b = [icon[s][metric] for s in SEEDS]
        ci = stats.ttest_rel(a, b).confidence_interval()
        key = f"{lay.VERDICT_METRIC_PREFIX}{metric}"
        assert logged[f"{key}/delta"] == pytest.approx(sum(a) / 3 - sum(b) / 3, abs=1e-12)
        assert logged[f"{key}/ci_lo"] == pytest.approx(ci.low)
        assert logged[f"{key}/ci_hi"] == pytest.approx(ci.high)
        pairs[metric] = (a, b)
    # The space sets no `verdict:`: its own metric is the primary endpoint.
    assert sweep.data.tags[lay.TAG_PRIMARY_METRIC] == m.EVAL_LINEAR_ACC
    for metric, expected in expected_p_values(pairs, primary=m.EVAL_LINEAR_ACC).items():
        key = f"{lay.VERDICT_METRIC_PREFIX}{metric}/p_holm"
        assert logged.get(key, math.nan) == pytest.approx(expected, nan_ok=True), key
    assert sweep.data.tags[lay.TAG_VERDICT].startswith("RKDO (α = ")

    _check_splits(client, sweep, by_stage_arm, study)
    _check_report(tmp_path, mlflow_server, sweep, baseline)


def _check_splits(client, sweep, by_stage_arm, study) -> None:
    """Selection reads the validation split only; the test split scores the confirmation.

    Each seed run records its split (`eval_split`: its own param, else the sweep run's),
    and the probe's scored count shows which images it saw: the full protocol scores
    every image of the split, digits holding out 287 of its 1437 training images."""
    assert sweep.data.params["eval_split"] == "test"  # the sweep's fixed setting
    for (stage, _), trial_runs in by_stage_arm.items():
        split, scored = ("validation", 287) if stage == "search" else ("test", 360)
        for trial_run in trial_runs:
            seed_runs = client.search_runs(
                [trial_run.info.experiment_id],
                filter_string=f"tags.`{lay.TAG_PARENT}` = '{trial_run.info.run_id}'",
            )
            for run in seed_runs:
                assert run.data.params.get("eval_split", "test") == split, run.info.run_name
                assert run.data.metrics[m.EVAL_PROBE_TEST_SIZE] == scored
    # What Optuna was told, and what ranked the trials, are the validation means.
    told = sorted(t.value for t in study.trials)
    key = f"{lay.MEAN_PREFIX}{m.EVAL_LINEAR_ACC}"
    searched = sorted(r.data.metrics[key] for r in by_stage_arm["search", "search"])
    assert told == pytest.approx(searched)
    best = max(by_stage_arm["search", "search"], key=lambda r: r.data.metrics[key])
    assert sweep.data.tags[lay.TAG_BEST_TRIAL_ID] == best.data.tags[lay.TAG_TRIAL_ID]


def _check_report(tmp_path, mlflow_server, sweep, baseline) -> None:
    """The report reads the same sweep back and opens with the same verdict."""
    logged = sweep.data.metrics
    out = tmp_path / "report"
    report = run_cli(
        *("report", "--sweep", sweep.info.run_id, "--tracking-uri", mlflow_server),
        *("--out", str(out)),
        cwd=tmp_path,
    )
    assert report.returncode == 0, report.stdout[-2000:] + report.stderr[-3000:]
    markdown = (out / "report.md").read_text()
    verdict = markdown[markdown.index("## Verdict\n") :]
    best_id = sweep.data.tags[lay.TAG_BEST_TRIAL_ID]
    baseline_id = baseline.data.tags[lay.TAG_TRIAL_ID]
    assert f"Best RKDO configuration: trial `{best_id}`" in verdict
    assert f"Control: trial `{baseline_id}`, the baseline arm" in verdict
    assert "Estimated on fresh seeds (stage confirmation)" in verdict
    assert "search stage: the validation split; confirmation stage: the test split" in markdown
    rows = {row["metric"]: row for row in csv.DictReader((out / "verdict.csv").open())}
    assert {row["split"] for row in rows.values()} == {"test"}
    for metric in m.VERDICT_METRICS:
        key = f"{lay.VERDICT_METRIC_PREFIX}{metric}"
        assert float(rows[metric]["delta"]) == pytest.approx(logged[f"{key}/delta"], abs=1e-12)
        if f"{key}/p_holm" in logged:
            assert float(rows[metric]["p_holm"]) == pytest.approx(logged[f"{key}/p_holm"])
