"""Kill the driver at any moment, resume, and the sweep still ends whole.

The driver (with its embedded Ray) is killed with SIGKILL at moments drawn
from a seeded generator: a while after a report, the instant a trial's
checkpoint directory appears (Ray is writing it), and the instant a trial's
MLflow finalisation is under way (its outbox journals the FINISHED state).
After each kill the sweep is resumed; after the last it runs to its end. Then:
one sweep run; one FINISHED trial run per configuration, earlier attempts
KILLED and linked to their successor; no configuration run twice; Optuna's
history holds each configuration once.
"""

from __future__ import annotations

import json
import os
import pickle
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest
from _ray_local import kill_ray_started_under, short_ray_tmpdir
from _support import RKDO_TUNE

from rkdo_tune.tracking import layout as lay

pytestmark = [pytest.mark.slow, pytest.mark.ray]
SEED = 15
KILLS = ("checkpoint", "finalisation", "after a report", "after a report", "checkpoint")
ALPHAS = (0.2, 0.4, 0.6, 0.8)
SPACE = f"""
name: killed
description: A grid of four and the I-Con baseline, one trial at a time.
metric: {{name: eval/linear_acc, mode: max}}
base: {{dataset: digits, objective: rkdo, epochs: 4, steps_per_epoch: 10, protocol: full}}
parameters:
  alpha: {{type: categorical, choices: {list(ALPHAS)}}}
search: {{algorithm: grid, seed: 0, max_concurrent: 1}}
scheduler: {{kind: none}}
repeats: 1
resources: {{cpus: 1, gpus: 0}}
"""
RUN_TIMEOUT_S = 300


def _checkpoints(experiment: Path) -> set[Path]:
    return set(experiment.glob("*/checkpoint_*"))


def _finalisations(experiment: Path) -> int:
    """FINISHED states the trials' outboxes have journaled (seed and trial runs)."""
    count = 0
    for journal in (experiment / "mlflow-outbox").glob("*.jsonl"):
        for line in journal.read_text().splitlines():
            count += '"op":"set_terminated"' in line and '"status":"FINISHED"' in line
    return count


def _reports(experiment: Path) -> int:
    return sum(len(p.read_text().splitlines()) for p in experiment.glob("*/result.json"))


def _moment(kind: str, rng: random.Random, experiment: Path):
    """A predicate that turns true at the moment to kill (state read when it is made)."""
    if kind == "checkpoint":
        seen, nth = _checkpoints(experiment), rng.randint(1, 3)
        return lambda: len(_checkpoints(experiment) - seen) >= nth
    if kind == "finalisation":
        before = _finalisations(experiment)
        return lambda: _finalisations(experiment) > before
    reports, delay = _reports(experiment), rng.uniform(0.5, 4.0)
    since: list[float] = []

    def after_a_report() -> bool:
        if not since and _reports(experiment) > reports:
            since.append(time.monotonic())
        return bool(since) and time.monotonic() - since[0] >= delay

    return after_a_report


def _start(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [RKDO_TUNE, *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _kill_when(driver: subprocess.Popen, moment, ray_tmp: str) -> bool:
    """SIGKILL the driver and its Ray when `moment()`; False if the sweep ended first."""
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while not moment():
        if driver.poll() is not None:
            return False
        assert time.monotonic() < deadline, "the kill moment never came"
        time.sleep(0.02)
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait(timeout=30)
    kill_ray_started_under(ray_tmp)
    return True


def _check_mlflow(uri: str, experiment_name: str, trial_ids: set[str]) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(experiment_name)
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    role = {r.info.run_id: r.data.tags.get(lay.TAG_ROLE) for r in runs}
    sweeps = [r for r in runs if role[r.info.run_id] == lay.ROLE_SWEEP]
    assert len(sweeps) == 1 and sweeps[0].info.status == "FINISHED"
    trials = {r.info.run_id: r for r in runs if role[r.info.run_id] == lay.ROLE_TRIAL}
    finished = [r for r in trials.values() if r.info.status == "FINISHED"]
    assert sorted(r.data.tags[lay.TAG_TRIAL_ID] for r in finished) == sorted(trial_ids)
    continued = {r.data.tags.get(lay.TAG_CONTINUES) for r in trials.values()}
    for run in trials.values():
        if run.info.status == "FINISHED":
            continue
        assert run.info.status == "KILLED", run.data.tags
        successor = trials[run.data.tags[lay.TAG_SUPERSEDED_BY]]  # linked forward ...
        assert _configuration(successor) == _configuration(run)
        if successor.data.tags[lay.TAG_TRIAL_ID] == run.data.tags[lay.TAG_TRIAL_ID]:
            assert run.info.run_id in continued  # ... and back, within one Tune trial


def _configuration(run) -> tuple:
    return run.data.tags.get(lay.TAG_ARM), run.data.params.get("alpha")


def _check_optuna(experiment: Path) -> None:
    [newest] = sorted(experiment.glob("searcher-state-*.pkl"))[-1:]
    state = pickle.loads(newest.read_bytes())  # what OptunaSearch.save wrote: its __dict__
    trials = state["_ot_study"].get_trials(deepcopy=False)
    assert [t.state.name for t in trials] == ["COMPLETE"] * len(ALPHAS)
    assert sorted(t.params["alpha"] for t in trials) == list(ALPHAS)


def test_killed_at_seeded_moments_and_resumed_the_sweep_ends_whole(tmp_path, mlflow_server):
    space = tmp_path / "killed.yaml"
    space.write_text(SPACE)
    experiment = tmp_path / "results" / "killed"
    args = ["sweep", "--space", str(space), "--name", "killed"]
    args += ["--storage", str(tmp_path / "results"), "--tracking-uri", mlflow_server]
    args += ["--experiment", f"killed-{tmp_path.name}"]
    ray_tmp = short_ray_tmpdir()
    env = {**os.environ, "RAY_TMPDIR": ray_tmp}
    rng = random.Random(SEED)
    kills = rng.sample(KILLS, len(KILLS))
    killed: list[str] = []
    try:
        for number, kind in enumerate(kills):
            driver = _start([*args, *(["--resume"] if number else [])], env, tmp_path)
            if not _kill_when(driver, _moment(kind, rng, experiment), ray_tmp):
                pytest.fail(f"the sweep ended before kill {number + 1} ({kind})")
            killed.append(kind)
        driver = _start([*args, "--resume"], env, tmp_path)
        _, err = driver.communicate(timeout=RUN_TIMEOUT_S)
        assert driver.returncode == 0, f"after kills {killed}: {err[-3000:]}"
    finally:
        kill_ray_started_under(ray_tmp)

    from ray import tune

    trials = tune.ExperimentAnalysis(str(experiment)).trials  # the sweep's own record
    assert len(trials) == len(ALPHAS) + 1  # each configuration and the baseline, once each
    assert all(t.status == "TERMINATED" for t in trials)
    configs = [json.dumps(t.config, sort_keys=True) for t in trials]
    assert len(set(configs)) == len(configs), "a configuration ran twice"
    for trial in trials:
        rows = (Path(trial.path) / "result.json").read_text().splitlines()
        assert json.loads(rows[-1])["trial_status"] == "completed"
    trial_ids = {t.trial_id for t in trials}
    _check_mlflow(mlflow_server, f"killed-{tmp_path.name}", trial_ids)
    _check_optuna(experiment)
    assert not list((experiment / "mlflow-outbox").glob("*.jsonl")), "records never sent"
