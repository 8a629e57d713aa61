"""A sweep on a real two-node Ray cluster (token auth, loopback) spreads trials over both nodes."""

from __future__ import annotations

import json

import pytest
from _ray_cluster import TwoNodeCluster
from _support import run_cli

pytestmark = [pytest.mark.slow, pytest.mark.ray]


@pytest.fixture(scope="module")
def two_node_cluster(tmp_path_factory):
    cluster = TwoNodeCluster(tmp_path_factory.mktemp("ray"))
    try:
        yield cluster.start()
    finally:
        cluster.stop()
    assert cluster.processes() == []


def test_sweep_runs_trials_on_both_nodes_and_stores_everything(
    two_node_cluster, mlflow_server, tmp_path
):
    storage = tmp_path / "shared"
    proc = run_cli(
        "sweep",
        "--space",
        "smoke.yaml",
        "--name",
        "two-node",
        "--storage",
        str(storage),
        "--address",
        two_node_cluster.address,
        "--tracking-uri",
        mlflow_server,
        "--experiment",
        "two-node-test",
        cwd=tmp_path,
        env=two_node_cluster.env,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    trial_dirs = sorted(p for p in (storage / "two-node").iterdir() if p.is_dir())
    assert len(trial_dirs) == 2
    nodes = set()
    for trial_dir in trial_dirs:
        lines = (trial_dir / "result.json").read_text().splitlines()
        final = json.loads(lines[-1])
        nodes.add(final["node_id"])
        assert final["trial_status"] == "completed"
        assert any(trial_dir.glob("checkpoint_*/seed_42/trainer_state.pt"))
    assert len(nodes) == 2, "both trials ran on the same node"

    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=mlflow_server)
    experiment = client.get_experiment_by_name("two-node-test")
    trials = client.search_runs([experiment.experiment_id], "tags.`rkdo.role` = 'trial'")
    assert {run.data.tags["node_id"] for run in trials} == nodes


def test_a_driver_without_the_token_gets_one_clear_line(two_node_cluster, tmp_path):
    env = {**two_node_cluster.env, "RAY_AUTH_TOKEN": "0" * 64}
    proc = run_cli(
        "sweep",
        "--space",
        "smoke.yaml",
        "--name",
        "bad-token",
        "--storage",
        str(tmp_path),
        "--address",
        two_node_cluster.address,
        "--tracking-uri",
        f"sqlite:///{tmp_path}/m.db",
        cwd=tmp_path,
        env=env,
        timeout=180,
    )
    assert proc.returncode == 1, proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert "Traceback" not in proc.stderr
    assert "RAY_AUTH_TOKEN" in lines[-1] and two_node_cluster.address in lines[-1]
