"""Floors computed once per key: a later sweep of the same shared settings in the same
experiment reuses the floors an earlier finished sweep recorded, and a sweep whose shared
settings differ computes its own (issue 16's per-sweep cost; issue 18 §1's cache)."""

from __future__ import annotations

import json

import pytest
from _support import run_cli

from rkdo_tune import environment as env
from rkdo_tune.tracking import layout as lay

pytestmark = [pytest.mark.slow, pytest.mark.ray]


def _sweep(tmp_path, mlflow_server, name: str, *overrides: str, cpus: int = 1):
    sets = [arg for value in overrides for arg in ("--set", value)]
    proc = run_cli(
        *("sweep", "--space", "smoke.yaml", "--name", name, *sets),
        *("--cpus-per-trial", str(cpus)),
        *("--storage", str(tmp_path / "results"), "--tracking-uri", mlflow_server),
        *("--experiment", "floors"),
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def test_a_later_sweep_reuses_floors_of_the_same_key_only(tmp_path, mlflow_server):
    from mlflow.tracking import MlflowClient

    first = _sweep(tmp_path, mlflow_server, "first")
    assert "floors reused" not in first
    # Two CPUs per trial: the reusing sweep's side task asks for none, yet must report the
    # trials' torch threads, not the one thread Ray gives a zero-CPU task.
    again = _sweep(tmp_path, mlflow_server, "again", cpus=2)
    other = _sweep(tmp_path, mlflow_server, "other", "base.lr=0.002")

    client = MlflowClient(tracking_uri=mlflow_server)
    experiment = client.get_experiment_by_name("floors")
    sweeps = {
        run.info.run_name: run
        for run in client.search_runs([experiment.experiment_id], "tags.`rkdo.role` = 'sweep'")
    }
    origin = sweeps["first"].info.run_id
    assert f"note: floors reused from sweep run {origin} (first)" in again
    assert "floors reused" not in other  # another learning rate: another ceiling

    def floors(run):
        return {k: v for k, v in run.data.metrics.items() if k.startswith(lay.FLOOR_METRIC_PREFIX)}

    assert floors(sweeps["again"]) == floors(sweeps["first"]) and floors(sweeps["first"])
    tags = {name: run.data.tags[lay.TAG_FLOOR_KEY] for name, run in sweeps.items()}
    assert tags["again"] == tags["first"] != tags["other"]
    threads = {
        name: json.loads(run.data.tags[lay.TAG_ENVIRONMENT])[env.THREADS]
        for name, run in sweeps.items()
    }
    assert threads == {"first": "1", "again": "2", "other": "1"}
