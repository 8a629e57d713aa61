"""The cluster routes docker/README.md documents, run for real on a loopback two-node cluster.

`ray job submit` to the head's job server (dashboard on 127.0.0.1), and a
driver on this machine attached through the Ray client (`ray://`). Each runs
the smoke sweep; its trials land on both nodes and reach MLflow.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from _ray_cluster import TwoNodeCluster
from _support import RKDO_TUNE, run_cli

from rkdo_tune.tracking import layout as lay

pytestmark = [pytest.mark.slow, pytest.mark.ray]
RAY = str(Path(sys.executable).with_name("ray"))
SMOKE_TRIALS = 2


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    cluster = TwoNodeCluster(tmp_path_factory.mktemp("ray"), dashboard=True)
    try:
        yield cluster.start()
    finally:
        cluster.stop()


def _sweep_args(cluster_address: str, storage: Path, uri: str, name: str) -> list[str]:
    return [
        "sweep",
        "--space",
        "smoke.yaml",
        "--name",
        name,
        "--address",
        cluster_address,
        "--storage",
        str(storage),
        "--tracking-uri",
        uri,
        "--experiment",
        name,
    ]


def _check_both_nodes_and_mlflow(storage: Path, uri: str, name: str) -> None:
    trial_dirs = sorted(p for p in (storage / name).iterdir() if (p / "result.json").exists())
    assert len(trial_dirs) == SMOKE_TRIALS
    finals = [json.loads((d / "result.json").read_text().splitlines()[-1]) for d in trial_dirs]
    assert all(final["trial_status"] == "completed" for final in finals)
    assert len({final["node_id"] for final in finals}) == 2, "the trials shared one node"

    from mlflow import MlflowClient

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(name)
    trials = client.search_runs([experiment.experiment_id], f"tags.`{lay.TAG_ROLE}` = 'trial'")
    assert sorted(r.info.status for r in trials) == ["FINISHED"] * SMOKE_TRIALS


def test_ray_job_submit_runs_the_sweep_on_the_cluster(cluster, mlflow_server, tmp_path):
    sweep = _sweep_args(cluster.address, tmp_path, mlflow_server, "job-submit")
    proc = subprocess.run(
        [RAY, "job", "submit", "--address", cluster.dashboard_url, "--", RKDO_TUNE, *sweep],
        env=cluster.env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "succeeded" in out, out[-4000:]
    assert "Verdict" in out or "MLflow: experiment job-submit" in out  # the job's own output
    _check_both_nodes_and_mlflow(tmp_path, mlflow_server, "job-submit")


def test_a_ray_client_driver_runs_the_sweep_on_the_cluster(cluster, mlflow_server, tmp_path):
    sweep = _sweep_args(cluster.client_address, tmp_path, mlflow_server, "ray-client")
    proc = run_cli(*sweep, cwd=tmp_path, env=cluster.env, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    _check_both_nodes_and_mlflow(tmp_path, mlflow_server, "ray-client")
