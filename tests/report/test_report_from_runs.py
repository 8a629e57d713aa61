"""`rkdo-tune report` as a real subprocess against a real MLflow server holding a logged sweep.

The sweep is logged with MlflowClient in the tracking layout (parent, trials,
seeds, step histories); every number the report prints is recomputed here
from the values this test logged, with numpy and scipy only.
"""

from __future__ import annotations

import csv
import json
import math
import time

import numpy as np
import pytest
from _mlflow_server import free_port
from _support import run_cli
from mlflow import MlflowClient
from mlflow.entities import Metric, Param
from scipy import stats

from rkdo_tune import metrics as m
from rkdo_tune.cli import main
from rkdo_tune.config import TrialConfig

pytestmark = pytest.mark.slow

EXPERIMENT = "report_demo"
SEEDS = (42, 123, 456)
EPOCHS, STEPS_PER_EPOCH = 4, 5
# trial id -> sampled params; tau is shared, alpha is RKDO's own knob.
TRIALS = {
    "t_rkdo_a": {"objective": "rkdo", "tau": 0.3, "alpha": 0.3},
    "t_rkdo_b": {"objective": "rkdo", "tau": 0.5, "alpha": 0.7},
    "t_icon_a": {"objective": "icon", "tau": 0.3},
    "t_icon_b": {"objective": "icon", "tau": 0.5},
}
SPECS = {
    "objective": {"type": "categorical", "choices": ["rkdo", "icon"]},
    "tau": {"type": "categorical", "choices": [0.3, 0.5]},
    "alpha": {"type": "float", "low": 0.1, "high": 0.9, "when": {"objective": ["rkdo"]}},
}
EVAL_STEPS = [STEPS_PER_EPOCH * (e + 1) for e in range(EPOCHS)]


def _seed_history(rng: np.random.Generator, params: dict) -> dict[str, list[float]]:
    """Per-eval values (4 evals) and per-step losses (20 steps) of one synthetic seed run.

    A large alpha peaks early and then falls: the paper's overspecialisation.
    """
    objective = params["objective"]
    start = 0.3 if objective == "rkdo" else 0.25
    acc = np.clip(start + np.cumsum(rng.uniform(0.02, 0.12, EPOCHS)), 0, 1)
    if params.get("alpha", 0) >= 0.7:
        acc[-1] = acc[-2] - rng.uniform(0.03, 0.08)
    loss = (3.0 if objective == "rkdo" else 2.0) * np.exp(-0.05 * np.arange(1, 21))
    loss += rng.normal(0, 0.01, loss.size)
    return {
        m.EVAL_LINEAR_ACC: acc.tolist(),
        m.EVAL_KNN_ACC: (acc - rng.uniform(0, 0.05, EPOCHS)).tolist(),
        m.EVAL_YARDSTICK_LOSS: (2.5 - acc + rng.normal(0, 0.02, EPOCHS)).tolist(),
        m.TRAIN_EPOCH_LOSS: [float(loss[s - STEPS_PER_EPOCH : s].mean()) for s in EVAL_STEPS],
        m.TRAIN_LOSS: loss.tolist(),
    }


def _metrics(history: dict[str, list[float]], now: int) -> list[Metric]:
    out = [Metric(m.TRAIN_LOSS, v, now, s + 1) for s, v in enumerate(history[m.TRAIN_LOSS])]
    for key in (m.EVAL_LINEAR_ACC, m.EVAL_KNN_ACC, m.EVAL_YARDSTICK_LOSS, m.TRAIN_EPOCH_LOSS):
        out += [Metric(key, v, now, s) for s, v in zip(EVAL_STEPS, history[key], strict=True)]
    acc = history[m.EVAL_LINEAR_ACC]
    peak = int(np.argmax(acc))
    diag = {
        m.DIAG_EARLY_STOP_STEP: 12.0 if acc[-1] > 0.5 else -1.0,
        m.DIAG_PEAK_EVAL_STEP: float(EVAL_STEPS[peak]),
        m.DIAG_PEAK_EVAL_VALUE: acc[peak],
        m.DIAG_EVAL_DROP_FROM_PEAK: acc[peak] - acc[-1],
        m.DIAG_OVERSPECIALIZED: float(acc[peak] - acc[-1] >= 0.02),
        m.DIAG_DIVERGED: 0.0,
        m.DIAG_STEPS: 20.0,
    }
    return out + [Metric(key, value, now, EVAL_STEPS[-1]) for key, value in diag.items()]


def _log_trial(client, experiment_id, parent_id, trial_id, params, rng, seeds) -> dict:
    config = TrialConfig(epochs=EPOCHS, steps_per_epoch=STEPS_PER_EPOCH, **params).to_dict()
    trial = client.create_run(
        experiment_id,
        run_name=trial_id,
        tags={
            "mlflow.parentRunId": parent_id,
            "rkdo.role": "trial",
            "trial_id": trial_id,
            "node_id": "node0",
            "rkdo.seeds": json.dumps(seeds),
            "rkdo.status": "completed",
            "rkdo.reason": "",
            "overspecialized": "false",
        },
    )
    trial_params = [Param(k, str(v)) for k, v in params.items()]
    trial_params += [Param(f"config.{k}", str(v)) for k, v in config.items()]
    client.log_batch(trial.info.run_id, params=trial_params)
    histories, now = {}, int(time.time() * 1000)
    for seed in seeds:
        history = histories[seed] = _seed_history(rng, params)
        run = client.create_run(
            experiment_id,
            run_name=f"{trial_id}-seed{seed}",
            tags={
                "mlflow.parentRunId": trial.info.run_id,
                "rkdo.role": "seed",
                "seed": str(seed),
                "trial_id": trial_id,
                "rkdo.status": "completed",
            },
        )
        seed_params = [Param(k, str(v)) for k, v in {**config, "seed": seed}.items()]
        client.log_batch(run.info.run_id, metrics=_metrics(history, now), params=seed_params)
        client.set_terminated(run.info.run_id)
    finals = [histories[s][m.EVAL_LINEAR_ACC][-1] for s in seeds]
    client.log_batch(
        trial.info.run_id,
        metrics=[
            Metric(m.EVAL_LINEAR_ACC, float(np.mean(finals)), now, EVAL_STEPS[-1]),
            Metric(
                f"{m.EVAL_LINEAR_ACC}_std",
                float(np.std(finals, ddof=1)) if len(finals) > 1 else 0.0,
                now,
                EVAL_STEPS[-1],
            ),
        ],
    )
    client.set_terminated(trial.info.run_id)
    return histories


def _log_interrupted(client, experiment_id, parent_id, trial_id, seed) -> None:
    """An interrupted trial run (KILLED) whose seed run logged a value no report may use."""
    trial = client.create_run(
        experiment_id,
        run_name=trial_id,
        tags={"mlflow.parentRunId": parent_id, "rkdo.role": "trial", "trial_id": trial_id},
    )
    run = client.create_run(
        experiment_id,
        tags={
            "mlflow.parentRunId": trial.info.run_id,
            "rkdo.role": "seed",
            "seed": str(seed),
            "trial_id": trial_id,
        },
    )
    client.log_batch(
        run.info.run_id,
        metrics=[Metric(m.EVAL_LINEAR_ACC, 0.99, 0, 5)],
        params=[Param("objective", "icon"), Param("seed", str(seed))],
    )
    for run_id in (run.info.run_id, trial.info.run_id):
        client.set_terminated(run_id, status="KILLED")


def log_sweep(
    client: MlflowClient,
    *,
    sweep_name: str,
    trials: dict = TRIALS,
    seeds: tuple = SEEDS,
    experiment: str = EXPERIMENT,
) -> tuple[str, dict]:
    """A finished sweep in the tracking layout; returns (parent id, histories)."""
    found = client.get_experiment_by_name(experiment)
    experiment_id = found.experiment_id if found else client.create_experiment(experiment)
    parent = client.create_run(
        experiment_id,
        run_name=sweep_name,
        tags={
            "rkdo.role": "sweep",
            "rkdo.sweep_name": sweep_name,
            "rkdo.space_name": experiment,
            "rkdo.metric": m.EVAL_LINEAR_ACC,
            "rkdo.mode": "max",
            "rkdo.best_trial_id": next(iter(trials)),
        },
    )
    params = [Param(f"parameters.{k}", json.dumps(v)) for k, v in SPECS.items()]
    params += [Param("base.epochs", str(EPOCHS)), Param("repeats.seeds", json.dumps(seeds))]
    client.log_batch(parent.info.run_id, params=params)
    rng = np.random.default_rng(7)
    if len(trials) > 1:  # a resumed trial: its interrupted run must not count
        _log_interrupted(client, experiment_id, parent.info.run_id, "t_icon_b", seeds[0])
    histories = {
        trial_id: _log_trial(client, experiment_id, parent.info.run_id, trial_id, p, rng, seeds)
        for trial_id, p in trials.items()
    }
    client.set_terminated(parent.info.run_id)
    return parent.info.run_id, histories


TARGET = 0.5


@pytest.fixture(scope="module")
def sweep(mlflow_server):
    """An older sweep and the latest one in the same experiment; the report must pick the latter."""
    client = MlflowClient(tracking_uri=mlflow_server)
    # Same trial id as the new sweep: its runs must not leak into the new sweep's report.
    log_sweep(client, sweep_name="demo-old", trials={"t_rkdo_a": TRIALS["t_rkdo_a"]}, seeds=(42,))
    parent_id, histories = log_sweep(client, sweep_name="demo-new")
    return {"uri": mlflow_server, "parent": parent_id, "histories": histories}


@pytest.fixture(scope="module")
def report(sweep, tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "out"
    proc = run_cli(
        "report",
        "--experiment",
        EXPERIMENT,
        "--tracking-uri",
        sweep["uri"],
        "--out",
        str(out),
        "--target",
        str(TARGET),
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return {"proc": proc, "out": out, "md": (out / "report.md").read_text()}


def _csv(path) -> list[dict[str, str]]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


def _finals(histories, trial_id, key=m.EVAL_LINEAR_ACC) -> np.ndarray:
    """Final value per seed, in seed order."""
    return np.array([histories[trial_id][seed][key][-1] for seed in sorted(SEEDS)])


def test_report_picks_the_latest_sweep_and_prints_the_markdown_path(report):
    proc = report["proc"]
    assert proc.stdout.strip().splitlines()[-1] == str(report["out"] / "report.md")
    assert "reporting the latest, 'demo-new'" in proc.stderr
    assert "RKDO vs I-Con: sweep demo-new" in report["md"]


def test_leaderboard_is_mean_and_std_over_the_logged_seeds(report, sweep):
    rows = {row["trial_id"]: row for row in _csv(report["out"] / "leaderboard.csv")}
    assert set(rows) == set(TRIALS)
    means = {}
    for trial_id in TRIALS:
        finals = _finals(sweep["histories"], trial_id)
        means[trial_id] = finals.mean()
        row = rows[trial_id]
        assert float(row["eval/linear_acc mean"]) == pytest.approx(finals.mean(), abs=1e-12)
        assert float(row["eval/linear_acc std"]) == pytest.approx(finals.std(ddof=1), abs=1e-12)
        assert int(row["n_seeds"]) == len(SEEDS)
        cell = f"{finals.mean():.4f} ± {finals.std(ddof=1):.4f}"
        assert any(trial_id in line and cell in line for line in report["md"].splitlines())
    ranked = sorted(means, key=means.get, reverse=True)
    assert [row["trial_id"] for row in _csv(report["out"] / "leaderboard.csv")] == ranked


def test_matched_pairs_share_tau_and_p_values_are_scipys(report, sweep):
    rows = _csv(report["out"] / "matched_comparison.csv")
    pairs = {(row["rkdo_trial"], row["icon_trial"]) for row in rows}
    assert pairs == {("t_rkdo_a", "t_icon_a"), ("t_rkdo_b", "t_icon_b")}  # tau must match
    for rkdo_trial, icon_trial in pairs:
        for key in (m.EVAL_LINEAR_ACC, m.EVAL_YARDSTICK_LOSS):
            a, b = (
                _finals(sweep["histories"], rkdo_trial, key),
                _finals(sweep["histories"], icon_trial, key),
            )
            expected = stats.ttest_rel(a, b).pvalue
            diff = a - b
            row = next(
                r
                for r in rows
                if (r["rkdo_trial"], r["icon_trial"], r["metric"]) == (rkdo_trial, icon_trial, key)
            )
            assert float(row["p_value"]) == pytest.approx(expected, rel=1e-9)
            assert float(row["d_z"]) == pytest.approx(diff.mean() / diff.std(ddof=1), rel=1e-9)
            assert int(row["n"]) == len(SEEDS)
            assert f"{expected:.3g}" in report["md"]


def _stays_from(acc: list[float]) -> int | None:
    """The first eval step from which every later value reaches TARGET (the report's rule)."""
    return next((s for i, s in enumerate(EVAL_STEPS) if all(v >= TARGET for v in acc[i:])), None)


def _km_median(times: list[float], observed: list[bool]) -> float:
    """scipy's Kaplan–Meier: the first time its survival falls to 0.5 or below."""
    data = stats.CensoredData(
        uncensored=[t for t, o in zip(times, observed, strict=True) if o],
        right=[t for t, o in zip(times, observed, strict=True) if not o],
    )
    sf = stats.ecdf(data).sf
    below = np.flatnonzero(sf.probabilities <= 0.5)
    return float(sf.quantiles[below[0]]) if below.size else math.nan


def test_compute_to_target_is_where_each_seed_stays_censored_at_its_budget(report, sweep):
    rows = {row["trial_id"]: row for row in _csv(report["out"] / "compute_to_target_by_trial.csv")}
    per_seed = _csv(report["out"] / "compute_to_target_per_seed.csv")
    client = MlflowClient(tracking_uri=sweep["uri"])
    for trial_id in TRIALS:
        hits = [
            _stays_from(sweep["histories"][trial_id][seed][m.EVAL_LINEAR_ACC]) for seed in SEEDS
        ]
        times = [float(h) if h is not None else float(EPOCHS * STEPS_PER_EPOCH) for h in hits]
        observed = [h is not None for h in hits]
        row = rows[trial_id]
        assert float(row["reached"]) == pytest.approx(np.mean(observed))
        median = _km_median(times, observed) if any(observed) else math.nan
        if math.isnan(median):
            assert row["median_steps"] == ""
        else:
            assert float(row["median_steps"]) == median
            assert float(row["median_epochs"]) == pytest.approx(median / STEPS_PER_EPOCH)
        seeds = {int(r["seed"]): r for r in per_seed if r["trial_id"] == trial_id}
        for seed, steps, hit in zip(SEEDS, times, observed, strict=True):
            assert float(seeds[seed]["time"]) == steps and seeds[seed]["censored"] == str(not hit)
            metrics = client.get_run(seeds[seed]["run_id"]).data.metrics
            assert metrics[m.REPORT_STEPS_TO_TARGET] == steps
            assert metrics[m.REPORT_TARGET_CENSORED] == float(not hit)
    assert f"≥ {TARGET:.4f} (given with --target)" in report["md"]


def test_paper_claims_loss_improvement_beside_yardstick_and_probe(report, sweep):
    rows = _csv(report["out"] / "paper_claims.csv")
    assert len(rows) == 2
    for row in rows:
        h = sweep["histories"]
        loss_r = _finals(h, row["rkdo_trial"], m.TRAIN_EPOCH_LOSS).mean()
        loss_i = _finals(h, row["icon_trial"], m.TRAIN_EPOCH_LOSS).mean()
        probe = _finals(h, row["rkdo_trial"]).mean() - _finals(h, row["icon_trial"]).mean()
        assert float(row["loss_improvement_pct"]) == pytest.approx(100 * (loss_i - loss_r) / loss_i)
        assert float(row["probe_diff"]) == pytest.approx(probe)
        assert f"{100 * (loss_i - loss_r) / loss_i:+.1f}%" in report["md"]
    assert "not comparable" in report["md"]


def test_plots_exist_and_artifacts_are_on_the_parent_run(report, sweep):
    expected = {
        "sensitivity_alpha.png",
        "sensitivity_tau.png",
        "learning_curves.png",
        "overspecialisation.png",
        "optuna_parallel.png",
    }
    for name in expected:
        assert (report["out"] / name).stat().st_size > 1000, name
        assert f"]({name})" in report["md"]
    # A handful of trials: Optuna's importances would be noise, and the report says why.
    assert not (report["out"] / "optuna_importance.png").exists()
    assert "No parameter-importance plot: it needs at least 20 finished trials" in report["md"]
    client = MlflowClient(tracking_uri=sweep["uri"])
    logged = {
        a.path.removeprefix("report/") for a in client.list_artifacts(sweep["parent"], "report")
    }
    assert {"report.md", "leaderboard.csv", *expected} <= logged


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--experiment", "no_such_experiment"], "no_such_experiment"),
        (["--sweep", "0123456789abcdef0123456789abcdef"], "0123456789abcdef0123456789abcdef"),
    ],
)
def test_unknown_experiment_or_run_is_one_line_exit_2(sweep, args, fragment, capsys):
    # In-process through the CLI's own entry point: the same code path, without a
    # second interpreter start per case.
    with pytest.raises(SystemExit) as exit_info:
        main(["report", *args, "--tracking-uri", sweep["uri"]])
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], lines


def test_unreachable_server_fails_fast_with_exit_1(capsys):
    uri = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(SystemExit) as exit_info:
        main(["report", "--experiment", EXPERIMENT, "--tracking-uri", uri])
    assert exit_info.value.code == 1
    assert time.monotonic() - started < 15
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and uri in lines[0] and "cannot reach" in lines[0], lines


def test_rkdo_only_sweep_says_no_matched_pairs_and_keeps_a_failed_trial(sweep, tmp_path, capsys):
    client = MlflowClient(tracking_uri=sweep["uri"])
    rkdo_trials = {"t_a": {"objective": "rkdo", "tau": 0.5, "alpha": 0.3}}
    parent_id, _ = log_sweep(
        client, sweep_name="rkdo-only", trials=rkdo_trials, seeds=(42, 123), experiment="rkdo_only"
    )
    failed = client.create_run(
        client.get_run(parent_id).info.experiment_id,
        run_name="t_failed",
        tags={
            "mlflow.parentRunId": parent_id,
            "rkdo.role": "trial",
            "trial_id": "t_failed",
            "rkdo.status": "failed",
            "rkdo.reason": "worker died",
        },
    )
    client.set_terminated(failed.info.run_id, status="FAILED")
    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                "report",
                "--sweep",
                parent_id,
                "--tracking-uri",
                sweep["uri"],
                "--out",
                str(tmp_path / "r"),
            ]
        )
    assert exit_info.value.code == 0, capsys.readouterr().err
    text = (tmp_path / "r" / "report.md").read_text()
    assert "**No matched pairs.**" in text
    assert "No RKDO and I-Con pair to compare." in text
    assert any(
        line.startswith("| 2 | t_failed |") and "failed" in line for line in text.splitlines()
    )


def test_all_sweeps_writes_one_report_per_sweep(sweep, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                "report",
                "--experiment",
                EXPERIMENT,
                "--all-sweeps",
                "--tracking-uri",
                sweep["uri"],
                "--out",
                str(tmp_path),
            ]
        )
    assert exit_info.value.code == 0, capsys.readouterr().err
    printed = capsys.readouterr().out.split()
    assert printed == [str(tmp_path / name / "report.md") for name in ("demo-new", "demo-old")]
    old = (tmp_path / "demo-old" / "report.md").read_text()
    assert "- **Seed runs:** 1 over seeds 42" in old  # nothing from the newer sweep leaked in


def test_without_a_store_here_it_names_the_missing_file(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        main(["report", "--experiment", EXPERIMENT])
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and str(tmp_path / "mlflow.db") in lines[0], lines
    assert not (tmp_path / "mlflow.db").exists()  # reporting must not create an empty store
