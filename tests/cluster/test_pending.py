"""On a cluster with an autoscaler, the placement check counts the node types it can add, and a
trial that waits for one is reported every 30 s and given up after --pending-timeout.

The cluster is the real two-node loopback cluster (1 CPU each, no GPU). No autoscaler
runs on it: the test writes the autoscaler's cluster config into the cluster's GCS, where
Ray Train (and the placement check) read it, as an autoscaler would report it.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from _ray_cluster import TwoNodeCluster
from _support import run_cli

pytestmark = [pytest.mark.slow, pytest.mark.ray]

_REPORT_CONFIG = """
import sys
import ray
from ray._raylet import GCS_AUTOSCALER_CLUSTER_CONFIG_KEY, GCS_AUTOSCALER_STATE_NAMESPACE
from ray.core.generated import autoscaler_pb2
from ray.experimental.internal_kv import _internal_kv_put

ray.init(address=sys.argv[1], log_to_driver=False)
config = autoscaler_pb2.ClusterConfig()
group = config.node_group_configs.add(name="workers", min_count=0, max_count=2)
group.resources.update({"CPU": int(sys.argv[2]), "GPU": int(sys.argv[3])})
_internal_kv_put(
    GCS_AUTOSCALER_CLUSTER_CONFIG_KEY,
    config.SerializeToString(),
    namespace=GCS_AUTOSCALER_STATE_NAMESPACE,
)
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    cluster = TwoNodeCluster(tmp_path_factory.mktemp("ray"))
    try:
        yield cluster.start()
    finally:
        cluster.stop()
    assert cluster.processes() == []


def _report_node_type(cluster: TwoNodeCluster, cpus: int, gpus: int) -> None:
    """What an autoscaler reports: it can add up to two nodes of `cpus` CPUs and `gpus` GPUs."""
    subprocess.run(
        [sys.executable, "-c", _REPORT_CONFIG, cluster.address, str(cpus), str(gpus)],
        env=cluster.env,
        check=True,
        timeout=120,
        capture_output=True,
    )


def _sweep(cluster: TwoNodeCluster, tmp_path, *args: str) -> subprocess.CompletedProcess:
    return run_cli(
        "sweep",
        "--space",
        "smoke.yaml",
        "--address",
        cluster.address,
        "--storage",
        str(tmp_path / "results"),
        *args,
        cwd=tmp_path,
        env=cluster.env,
        timeout=300,
    )


def _error_lines(proc: subprocess.CompletedProcess) -> list[str]:
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return [line for line in proc.stderr.splitlines() if line.startswith("rkdo-tune: error:")]


def test_no_node_type_of_the_autoscaler_has_a_gpu(cluster, tmp_path):
    _report_node_type(cluster, cpus=16, gpus=0)
    proc = _sweep(cluster, tmp_path, "--gpus-per-trial", "1")
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert _error_lines(proc) == [
        "rkdo-tune: error: --gpus-per-trial 1: no node of this cluster, nor any node type its "
        "autoscaler can add, has a GPU (largest node: 1 CPU, 0 GPUs)"
    ]
    assert not (tmp_path / "mlflow.db").exists()


def test_a_trial_waiting_for_a_gpu_node_is_reported_and_given_up_after_the_timeout(
    cluster, tmp_path
):
    _report_node_type(cluster, cpus=4, gpus=1)  # could be added, but never is
    proc = _sweep(cluster, tmp_path, "--gpus-per-trial", "1", "--pending-timeout", "35")
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-3000:]
    waiting = [line for line in proc.stdout.splitlines() if line.startswith("waiting for a node")]
    assert len(waiting) == 1, proc.stdout  # after 30 s, then the timeout at 35 s
    assert "1 CPU, 1 GPU free" in waiting[0] and "--pending-timeout 35 s" in waiting[0]
    assert _error_lines(proc) == [
        "rkdo-tune: error: --gpus-per-trial 1: no node of this cluster has a GPU "
        "(largest node: 1 CPU, 0 GPUs); gave up after --pending-timeout 35 s"
    ]
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    (experiment,) = [e for e in client.search_experiments() if e.name == "smoke"]
    runs = client.search_runs([experiment.experiment_id])
    assert [run.info.status for run in runs] == ["FAILED"]  # the sweep run, closed
