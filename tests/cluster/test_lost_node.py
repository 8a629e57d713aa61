"""A node lost mid-trial: the trial goes on from its checkpoint on the node that is left.

On a real two-node loopback cluster the second node's raylet is killed while a
trial runs there. With the default --max-failures 0 the trial is retried all
the same (a lost node is not its fault), continues from its last checkpoint,
and MLflow holds one FINISHED run for it with the interrupted attempt KILLED
and linked. The trial on the other node is not touched.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import psutil
import pytest
from _ray_cluster import TwoNodeCluster
from _support import RKDO_TUNE

from rkdo_tune.tracking import layout as lay

pytestmark = [pytest.mark.slow, pytest.mark.ray]
EPOCHS = 8
SPACE = f"""
name: lost-node
description: Two trials side by side, one on each node, long enough to lose a node.
metric: {{name: eval/linear_acc, mode: max}}
base: {{dataset: digits, model: small_cnn, epochs: {EPOCHS}, steps_per_epoch: 25, protocol: full}}
parameters:
  objective: {{type: categorical, choices: [rkdo, icon]}}
search: {{algorithm: grid, seed: 0, max_concurrent: 2}}
scheduler: {{kind: none}}
repeats: 1
resources: {{cpus: 1, gpus: 0}}
"""


@pytest.fixture
def cluster(tmp_path_factory):
    cluster = TwoNodeCluster(tmp_path_factory.mktemp("ray"))
    try:
        yield cluster.start()
    finally:
        cluster.stop()


def _second_raylet(cluster: TwoNodeCluster) -> tuple[psutil.Process, str]:
    """The raylet started last (the second node's) and its node id."""
    raylets = [p for p in cluster.processes() if Path(p.cmdline()[0]).name == "raylet"]
    raylet = max(raylets, key=lambda p: p.create_time())
    [node_id] = [a.split("=", 1)[1] for a in raylet.cmdline() if a.startswith("--node_id=")]
    return raylet, node_id


def _rows(experiment: Path) -> dict[str, list[dict]]:
    found = {}
    for path in experiment.glob("*/result.json"):
        found[path.parent.name] = [json.loads(x) for x in path.read_text().splitlines() if x]
    return found


def _kill_mid_trial(experiment: Path, raylet: psutil.Process, node_id: str) -> str:
    """SIGKILL the raylet once a trial on its node is a few epochs in; that trial's dir."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        for name, rows in _rows(experiment).items():
            if rows and rows[-1]["node_id"] == node_id and 2 <= rows[-1]["epoch"] < EPOCHS - 1:
                raylet.kill()
                return name
        time.sleep(0.1)
    raise AssertionError(f"no trial ran on the second node: {_rows(experiment)}")


def test_a_trial_whose_node_is_lost_finishes_on_the_other(cluster, mlflow_server, tmp_path):
    space = tmp_path / "lost.yaml"
    space.write_text(SPACE)
    raylet, lost_node = _second_raylet(cluster)
    args = ["sweep", "--space", str(space), "--name", "lost", "--storage", str(tmp_path)]
    args += ["--address", cluster.address, "--tracking-uri", mlflow_server]
    args += ["--experiment", f"lost-node-{tmp_path.name}"]
    driver = subprocess.Popen(
        [RKDO_TUNE, *args],
        env=cluster.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    hit = _kill_mid_trial(tmp_path / "lost", raylet, lost_node)
    out, err = driver.communicate(timeout=600)
    assert driver.returncode == 0, out[-2000:] + err[-3000:]

    rows = _rows(tmp_path / "lost")
    epochs = [row["epoch"] for row in rows[hit]]
    moved = [row for row in rows[hit] if row["node_id"] != lost_node]
    assert moved and moved[0]["epoch"] > 1, f"restarted from scratch: {epochs}"
    assert rows[hit][-1]["trial_status"] == "completed" and epochs[-1] == EPOCHS
    [other] = [r for name, r in rows.items() if name != hit]
    assert [row["epoch"] for row in other] == list(range(1, EPOCHS + 1))  # untouched

    from mlflow import MlflowClient

    client = MlflowClient(mlflow_server)
    experiment = client.get_experiment_by_name(f"lost-node-{tmp_path.name}")
    runs = client.search_runs([experiment.experiment_id], f"tags.`{lay.TAG_ROLE}` = 'trial'")
    by_trial: dict[str, list] = {}
    for run in runs:
        by_trial.setdefault(run.data.tags[lay.TAG_TRIAL_ID], []).append(run)
    lost_trial = rows[hit][-1]["trial_id"]
    statuses = sorted(r.info.status for r in by_trial[lost_trial])
    assert statuses == ["FINISHED", "KILLED"]
    [old] = [r for r in by_trial[lost_trial] if r.info.status == "KILLED"]
    [new] = [r for r in by_trial[lost_trial] if r.info.status == "FINISHED"]
    assert new.data.tags[lay.TAG_CONTINUES] == old.info.run_id
    assert old.data.tags[lay.TAG_SUPERSEDED_BY] == new.info.run_id
    [untouched] = [r for trial_id, r in by_trial.items() if trial_id != lost_trial]
    assert [r.info.status for r in untouched] == ["FINISHED"]
