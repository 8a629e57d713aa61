"""`baseline: {tune: true}`: I-Con gets its own study, run as RKDO's is, through the real CLI,
a real local Ray and a real `mlflow server`; the sweep and the report give both comparisons,
tuned against tuned and default against default, each labelled (issue 18 §2)."""

from __future__ import annotations

import csv

import pytest
from _support import run_cli
from scipy import stats

from rkdo_tune import metrics as m
from rkdo_tune.sweep._study import ICON_KNOBS
from rkdo_tune.tracking import layout as lay

pytestmark = [pytest.mark.slow, pytest.mark.ray]

SPACE = """
name: tuned
description: RKDO's alpha and tau, and I-Con's own knobs, each searched by an equal study.
metric: {name: eval/linear_acc, mode: max}
base: {dataset: digits, epochs: 2, steps_per_epoch: 3, batch_size: 32, protocol: full}
parameters:
  alpha: {type: float, low: 0.1, high: 0.9}
  tau: {type: float, low: 0.1, high: 1.0, log: true}
search: {algorithm: random, seed: 0, num_samples: 3, max_concurrent: 2}
scheduler: {kind: asha, grace_period: 1, reduction_factor: 2}
repeats: {seeds: [42, 123, 456]}
baseline: {tune: true}
confirm: {top: 1, seeds: [7, 8, 9]}
resources: {cpus: 1, gpus: 0}
"""
FRESH = (7, 8, 9)


def _seed_values(client, trial_run, metric: str) -> dict[int, float]:
    seeds = client.search_runs(
        [trial_run.info.experiment_id],
        filter_string=f"tags.`{lay.TAG_PARENT}` = '{trial_run.info.run_id}'",
    )
    return {int(run.data.tags[lay.TAG_SEED]): run.data.metrics[metric] for run in seeds}


def test_a_tuned_baseline_is_searched_as_rkdo_is_and_both_comparisons_are_given(
    tmp_path, mlflow_server
):
    import optuna
    from mlflow.tracking import MlflowClient

    (tmp_path / "tuned.yaml").write_text(SPACE)
    optuna_db = f"sqlite:///{tmp_path / 'optuna.db'}"
    proc = run_cli(
        *("sweep", "--space", str(tmp_path / "tuned.yaml"), "--name", "tuned"),
        *("--storage", str(tmp_path / "results"), "--tracking-uri", mlflow_server),
        *("--experiment", "tuned", "--optuna-storage", optuna_db),
        cwd=tmp_path,
    )
    out = proc.stdout
    assert proc.returncode == 0, out[-3000:] + proc.stderr[-3000:]
    assert "6 configurations, RKDO's and I-Con's defaults, 0 errors" in out
    assert "Tuned against tuned" in out and "Default against default" in out

    # Two Optuna studies of the same size under the same sampler, each over its own knobs.
    rkdo = optuna.load_study(study_name="tuned", storage=optuna_db)
    icon = optuna.load_study(study_name="tuned-icon", storage=optuna_db)
    assert len(rkdo.trials) == len(icon.trials) == 3
    assert type(rkdo.sampler) is type(icon.sampler)
    assert all(set(t.params) == {"alpha", "tau"} for t in rkdo.trials)
    knobs = {"objective", "tau", *ICON_KNOBS}
    assert all(
        {"objective", "debias", "kernel", "tau"} <= set(t.params) <= knobs for t in icon.trials
    )
    assert {t.params["objective"] for t in icon.trials} == {"icon"}

    client = MlflowClient(tracking_uri=mlflow_server)
    experiment = client.get_experiment_by_name("tuned")
    runs = client.search_runs([experiment.experiment_id], max_results=500)
    sweep = next(r for r in runs if r.data.tags.get(lay.TAG_ROLE) == lay.ROLE_SWEEP)
    trials = [r for r in runs if r.data.tags.get(lay.TAG_ROLE) == lay.ROLE_TRIAL]
    groups: dict[tuple[str, str, str], list] = {}
    for run in trials:
        tags, params = run.data.tags, run.data.params
        objective = params.get("objective", sweep.data.params["objective"])
        groups.setdefault((tags[lay.TAG_STAGE], tags[lay.TAG_ARM], objective), []).append(run)
    assert {k: len(v) for k, v in groups.items()} == {
        ("search", "search", "rkdo"): 3,
        ("search", "search", "icon"): 3,
        ("search", "baseline", "rkdo"): 1,  # RKDO's default
        ("search", "baseline", "icon"): 1,  # I-Con's default
        ("confirmation", "search", "rkdo"): 1,
        ("confirmation", "search", "icon"): 1,
        ("confirmation", "baseline", "rkdo"): 1,
        ("confirmation", "baseline", "icon"): 1,
    }
    # The I-Con default keeps I-Con's reference knobs: only the objective is its own.
    (icon_default,) = groups["search", "baseline", "icon"]
    assert not {"debias", "kernel", "student_df", "tau"} & set(icon_default.data.params)
    assert sweep.data.tags[lay.TAG_BASELINE_TUNED] == "true"

    # Default against default, on the fresh seeds: scipy's paired t on the logged values.
    a = _seed_values(client, groups["confirmation", "baseline", "rkdo"][0], m.EVAL_LINEAR_ACC)
    b = _seed_values(client, groups["confirmation", "baseline", "icon"][0], m.EVAL_LINEAR_ACC)
    assert sorted(a) == sorted(b) == list(FRESH)
    ci = stats.ttest_rel([a[s] for s in FRESH], [b[s] for s in FRESH]).confidence_interval()
    key = f"{lay.DEFAULTS_VERDICT_METRIC_PREFIX}{m.EVAL_LINEAR_ACC}"
    assert sweep.data.metrics[f"{key}/ci_lo"] == pytest.approx(ci.low)
    assert sweep.data.metrics[f"{key}/ci_hi"] == pytest.approx(ci.high)
    assert sweep.data.tags[lay.TAG_DEFAULTS_VERDICT].startswith("RKDO (default) vs I-Con default")
    assert "vs tuned I-Con (" in sweep.data.tags[lay.TAG_VERDICT]

    _check_report(tmp_path, mlflow_server, sweep)


def _check_report(tmp_path, mlflow_server, sweep) -> None:
    out = tmp_path / "report"
    report = run_cli(
        *("report", "--sweep", sweep.info.run_id, "--tracking-uri", mlflow_server),
        *("--out", str(out)),
        cwd=tmp_path,
    )
    assert report.returncode == 0, report.stdout[-2000:] + report.stderr[-3000:]
    markdown = (out / "report.md").read_text()
    assert "### Tuned against tuned" in markdown and "### Default against default" in markdown
    assert "the best trial of I-Con's own study" in markdown
    assert "Holm family 'default against default'" in markdown
    rows = list(csv.DictReader((out / "verdict.csv").open()))
    assert {r["comparison"] for r in rows} == {"tuned against tuned", "default against default"}
    logged = sweep.data.metrics
    for row in rows:
        if row["comparison"] == "default against default" and row["metric"] in m.VERDICT_METRICS:
            key = f"{lay.DEFAULTS_VERDICT_METRIC_PREFIX}{row['metric']}/delta"
            assert float(row["delta"]) == pytest.approx(logged[key], abs=1e-12)
