"""A sweep whose driver is interrupted (SIGINT) continues with --resume.

SIGKILL at any moment is `test_kill_anytime.py`'s property, which replaced the
one-moment SIGKILL test that lived here.

Completed trials are not re-run, the interrupted trial continues from its
checkpoint, Optuna proposes no extra trials, and MLflow keeps one parent run
with exactly one finished run per trial (the interrupted one KILLED and linked).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from _ray_local import kill_ray_started_under, short_ray_tmpdir
from _support import RKDO_TUNE, run_cli

pytestmark = [pytest.mark.slow, pytest.mark.ray]
EPOCHS = 6
TRIALS = 3 + 1  # the grid, and the I-Con baseline arm: restored, never proposed again

SPACE = """
name: resumable
description: Three sequential trials, long enough to interrupt the second one.
metric: {name: eval/linear_acc, mode: max}
base: {dataset: digits, model: small_cnn, epochs: 6, steps_per_epoch: 15, protocol: full}
parameters:
  alpha: {type: categorical, choices: [0.2, 0.5, 0.8]}
search: {algorithm: grid, seed: 0, max_concurrent: 1}
scheduler: {kind: none}
repeats: 1
resources: {cpus: 1, gpus: 0}
"""


def _results(experiment: Path) -> dict[str, list[dict]]:
    """Each trial directory's reported results so far."""
    found = {}
    for path in experiment.glob("*/result.json"):
        text = path.read_text()
        found[path.parent.name] = [json.loads(line) for line in text.splitlines() if line]
    return found


def _wait_for_second_trial(experiment: Path, timeout: float = 240) -> dict[str, list[dict]]:
    """Block until one trial finished and another has reported >= 2 epochs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        results = _results(experiment)
        finished = [r for r in results.values() if r and r[-1]["epoch"] == EPOCHS]
        running = [r for r in results.values() if r and 2 <= r[-1]["epoch"] < EPOCHS]
        if finished and running:
            return results
        time.sleep(0.2)
    raise AssertionError(f"the sweep never reached its second trial: {_results(experiment)}")


@pytest.fixture
def sweep_setup(tmp_path, mlflow_server):
    space = tmp_path / "resumable.yaml"
    space.write_text(SPACE)
    ray_tmp = short_ray_tmpdir()
    env = {**os.environ, "RAY_TMPDIR": ray_tmp}
    yield {
        "space": space,
        "storage": tmp_path / "results",
        "env": env,
        "uri": mlflow_server,
        "cwd": tmp_path,
        "ray_tmp": ray_tmp,
    }
    kill_ray_started_under(ray_tmp)


def _args(setup, name: str) -> list[str]:
    return [
        "sweep",
        "--space",
        str(setup["space"]),
        "--name",
        name,
        "--storage",
        str(setup["storage"]),
        "--tracking-uri",
        setup["uri"],
        "--experiment",
        name,
    ]


def _interrupt(setup, name: str) -> tuple[dict, subprocess.Popen]:
    """Start the sweep, SIGINT it while its second trial runs, wait for it to stop."""
    driver = subprocess.Popen(
        [RKDO_TUNE, *_args(setup, name)],
        cwd=setup["cwd"],
        env=setup["env"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    before = _wait_for_second_trial(setup["storage"] / name)
    driver.send_signal(signal.SIGINT)
    driver.wait(timeout=120)
    return before, driver


def _check_resumed(setup, name: str, before: dict[str, list[dict]]) -> None:
    proc = run_cli(*_args(setup, name), "--resume", cwd=setup["cwd"], env=setup["env"])
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    after = _results(setup["storage"] / name)
    assert len(after) == TRIALS, "Optuna/Tune proposed extra trials on resume"
    assert any(rows[-1]["epoch"] == EPOCHS for rows in before.values())
    for trial, rows in before.items():
        if rows[-1]["epoch"] == EPOCHS:
            assert after[trial] == rows, "a completed trial was re-run"
        else:
            epochs = [row["epoch"] for row in after[trial]]
            resumed_at = epochs[len(rows)] if len(epochs) > len(rows) else None
            assert resumed_at is not None and resumed_at > 1, f"restarted from scratch: {epochs}"
            assert epochs[-1] == EPOCHS
    assert all(rows[-1]["trial_status"] == "completed" for rows in after.values())
    _check_mlflow(setup["uri"], name)


def _check_mlflow(uri: str, name: str) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(name)
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    parents = [r for r in runs if r.data.tags.get("rkdo.role") == "sweep"]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    trials = [r for r in runs if r.data.tags.get("rkdo.role") == "trial"]
    finished = [r for r in trials if r.info.status == "FINISHED"]
    assert len({r.data.tags["trial_id"] for r in finished}) == len(finished) == TRIALS
    killed = [r for r in trials if r.info.status == "KILLED"]
    assert killed, "the interrupted trial's run was not marked"
    continued = {r.data.tags.get("rkdo.continues_run_id") for r in finished}
    assert {r.info.run_id for r in killed} <= continued


def test_sigint_stops_gracefully_prints_resume_and_resumes(sweep_setup):
    before, driver = _interrupt(sweep_setup, "interrupted")
    out = driver.stdout.read()
    assert driver.returncode == 130, out[-2000:] + driver.stderr.read()[-2000:]
    assert "INTERRUPTED" in out
    assert "--name interrupted" in out and "--resume" in out.splitlines()[-1]
    _check_resumed(sweep_setup, "interrupted", before)
