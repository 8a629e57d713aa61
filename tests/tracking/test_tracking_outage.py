"""The tracking server goes away in the middle of a sweep: no trial fails, no point is lost.

A real `mlflow server` is stopped 10 s into the first trial and started again
on the same store. With MLflow's own retry window (about 4 minutes) a 60 s
outage is bridged, and training goes on meanwhile; with a window shortened to
seconds the trials' records wait in the sweep's outbox and `--resume` sends them.
Either way MLflow ends up holding every per-step and evaluation point of every seed.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import time
from pathlib import Path

import pytest
from _mlflow_server import MlflowServer
from _ray_local import kill_ray_started_under, short_ray_tmpdir
from _support import RKDO_TUNE, run_cli

from rkdo_tune import metrics as m
from rkdo_tune.tracking import layout as lay

pytestmark = [pytest.mark.slow, pytest.mark.ray]
SPACE = """
name: outage
description: Two trials one after the other, long enough to lose the server during one.
metric: {name: eval/linear_acc, mode: max}
base: {dataset: digits, model: small_cnn, epochs: 8, steps_per_epoch: 25, protocol: full}
parameters:
  objective: {type: categorical, choices: [rkdo, icon]}
search: {algorithm: grid, seed: 0, max_concurrent: 1}
scheduler: {kind: none}
repeats: 1
resources: {cpus: 1, gpus: 0}
"""
TRIALS = 2
INTO_THE_TRIAL_S = 10
# MLflow's retry window shortened to seconds (names as in mlflow.environment_variables).
SHORT_WINDOW = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "5",
}


@pytest.fixture
def setup(tmp_path):
    (tmp_path / "server").mkdir()
    server = MlflowServer(tmp_path / "server")
    server.start()
    space = tmp_path / "outage.yaml"
    space.write_text(SPACE)
    ray_tmp = short_ray_tmpdir()
    env = {**os.environ, "RAY_TMPDIR": ray_tmp, lay.STEP_POINTS_ENV: "0"}  # every step
    args = ["sweep", "--space", str(space), "--name", "outage", "--storage", str(tmp_path)]
    args += ["--tracking-uri", server.uri, "--experiment", "outage"]
    yield {"server": server, "env": env, "args": args, "experiment": tmp_path / "outage"}
    kill_ray_started_under(ray_tmp)
    server.stop()


def _rows(experiment: Path) -> dict[str, list[dict]]:
    """Each trial directory's reports so far (result.json, written as Tune receives them)."""
    found = {}
    for path in experiment.glob("*/result.json"):
        lines = path.read_text().splitlines()
        found[path.parent.name] = [json.loads(line) for line in lines if line]
    return found


def _stop_into_the_first_trial(setup) -> tuple[subprocess.Popen, float]:
    driver = subprocess.Popen(
        [RKDO_TUNE, *setup["args"]],
        env=setup["env"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 300
    while not any(_rows(setup["experiment"]).values()):
        assert time.monotonic() < deadline and driver.poll() is None, "no trial ever reported"
        time.sleep(0.2)
    first = min(rows[0]["timestamp"] for rows in _rows(setup["experiment"]).values() if rows)
    time.sleep(max(0.0, first + INTO_THE_TRIAL_S - time.time()))
    setup["server"].stop()
    return driver, time.time()


def _check_every_point_arrived(uri: str, experiment: Path) -> None:
    """One FINISHED trial run per trial; its seed run holds every step and every evaluation."""
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("outage").experiment_id])
    role = {r.info.run_id: r.data.tags.get(lay.TAG_ROLE) for r in runs}
    [parent] = [r for r in runs if role[r.info.run_id] == lay.ROLE_SWEEP]
    assert parent.info.status == "FINISHED"
    trials = [r for r in runs if role[r.info.run_id] == lay.ROLE_TRIAL]
    assert len(trials) == TRIALS and {r.info.status for r in trials} == {"FINISHED"}
    by_trial = {r.data.tags[lay.TAG_TRIAL_ID]: r for r in trials}
    reported = _rows(experiment)
    assert len(reported) == TRIALS
    for rows in reported.values():
        trial = by_trial[rows[-1]["trial_id"]]
        [seed_run] = [r for r in runs if r.data.tags.get(lay.TAG_PARENT) == trial.info.run_id]
        seed = int(seed_run.data.tags[lay.TAG_SEED])
        steps = client.get_metric_history(seed_run.info.run_id, m.TRAIN_LOSS)
        assert sorted(p.step for p in steps) == list(range(1, rows[-1]["step"] + 1))
        expected = {row["step"]: row[f"seed_{seed}/{m.EVAL_LINEAR_ACC}"] for row in rows}
        evals = client.get_metric_history(seed_run.info.run_id, m.EVAL_LINEAR_ACC)
        assert sorted(p.step for p in evals) == sorted(expected)
        assert all(math.isclose(p.value, expected[p.step]) for p in evals)


def test_a_60s_outage_is_bridged_while_training_goes_on(setup):
    driver, stopped = _stop_into_the_first_trial(setup)
    time.sleep(60)
    setup["server"].start()
    back = time.time()
    out, err = driver.communicate(timeout=600)
    assert driver.returncode == 0, out[-2000:] + err[-3000:]
    during = [
        row
        for rows in _rows(setup["experiment"]).values()
        for row in rows
        if stopped + 2 < row["timestamp"] < back - 2
    ]
    assert during, "no trial reported while the server was away: logging held training up"
    _check_every_point_arrived(setup["server"].uri, setup["experiment"])


def test_records_beyond_a_short_retry_window_wait_in_the_outbox_for_resume(setup):
    setup["env"].update(SHORT_WINDOW)
    driver, _ = _stop_into_the_first_trial(setup)
    out, err = driver.communicate(timeout=600)  # the server stays away to the sweep's end
    assert driver.returncode == 1, out[-2000:] + err[-3000:]
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert "mlflow-outbox" in last and "--resume" in last, last
    rows = _rows(setup["experiment"])
    assert len(rows) == TRIALS and all(r[-1]["trial_status"] == "completed" for r in rows.values())
    setup["server"].start()
    resumed = run_cli(*setup["args"], "--resume", env=setup["env"], timeout=600)
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-3000:]
    assert not list((setup["experiment"] / "mlflow-outbox").glob("*.jsonl"))
    _check_every_point_arrived(setup["server"].uri, setup["experiment"])
