"""A trial no node can ever hold is one line before anything is tracked; fewer at once is a note.

The rules are checked on cluster shapes written out here; the last tests run the
real CLI on this machine's embedded Ray (2 CPUs, no GPU), which never grows.
"""

from __future__ import annotations

import pytest
from _support import run_cli

from rkdo_tune.errors import UsageError
from rkdo_tune.sweep._schema import Resources
from rkdo_tune.sweep.placement import (
    ClusterShape,
    NodeShape,
    check_placement,
    concurrency_note,
    unplaceable,
)

LAPTOP = ClusterShape((NodeShape(2, 0),))
TWO_NODES = ClusterShape((NodeShape(8, 0), NodeShape(2, 1)))


def test_a_gpu_request_on_a_cluster_without_gpus_names_the_flag_and_the_largest_node():
    line = unplaceable(Resources(1, 1), LAPTOP)
    assert (
        line
        == "--gpus-per-trial 1: no node of this cluster has a GPU (largest node: 2 CPUs, 0 GPUs)"
    )
    with pytest.raises(UsageError, match="--gpus-per-trial 2: no node of this cluster has 2 GPUs"):
        check_placement(Resources(1, 2), TWO_NODES, max_concurrent=1)


def test_too_many_cpus_names_the_cpu_flag():
    assert unplaceable(Resources(8, 0), LAPTOP) == (
        "--cpus-per-trial 8: no node of this cluster has 8 CPUs (largest node: 2 CPUs, 0 GPUs)"
    )


def test_cpus_and_gpus_that_exist_only_on_different_nodes_are_named_together():
    line = unplaceable(Resources(4, 1), TWO_NODES)
    assert line is not None
    assert line.startswith("--cpus-per-trial 4 --gpus-per-trial 1: ")
    assert "4 CPUs and 1 GPU together" in line


def test_fractional_gpus_and_fitting_requests_pass():
    assert unplaceable(Resources(1, 0.25), TWO_NODES) is None
    assert unplaceable(Resources(2, 1), TWO_NODES) is None
    assert unplaceable(Resources(0.5, 0), LAPTOP) is None
    assert NodeShape(2, 1).slots(Resources(0.5, 0.25)) == 4
    assert NodeShape(0.3, 0).slots(Resources(0.1, 0)) == 3  # no float rounding down


def test_an_autoscaler_that_can_add_a_fitting_node_type_passes_and_one_that_cannot_fails():
    growing = ClusterShape(LAPTOP.nodes, autoscaler=True, node_types=(NodeShape(8, 1),))
    assert unplaceable(Resources(1, 1), growing) is None
    cpu_only = ClusterShape(LAPTOP.nodes, autoscaler=True, node_types=(NodeShape(16, 0),))
    line = unplaceable(Resources(1, 1), cpu_only)
    assert line is not None and "nor any node type its autoscaler can add" in line


def test_an_autoscaler_of_unknown_node_types_is_left_to_the_pending_watch():
    unknown = ClusterShape(LAPTOP.nodes, autoscaler=True)
    assert unplaceable(Resources(1, 1), unknown) is None


def test_fewer_trials_at_once_than_max_concurrent_is_a_note_not_an_error():
    note = concurrency_note(Resources(1, 0), LAPTOP, max_concurrent=4)
    assert note == (
        "note: max_concurrent is 4, but this cluster (2 CPUs, 0 GPUs) runs at most "
        "2 trials of 1 CPU, 0 GPUs at once"
    )
    assert check_placement(Resources(1, 0), LAPTOP, max_concurrent=4) == [note]
    assert concurrency_note(Resources(1, 0), LAPTOP, max_concurrent=2) is None
    per_node = concurrency_note(Resources(2, 0), ClusterShape((NodeShape(3, 0),) * 2), 3)
    assert per_node is not None and "at most 2 trials" in per_node  # not 6 // 2 = 3
    growing = ClusterShape(LAPTOP.nodes, autoscaler=True, node_types=(NodeShape(8, 0),))
    assert concurrency_note(Resources(1, 0), growing, max_concurrent=16) is None


@pytest.mark.slow
@pytest.mark.ray
@pytest.mark.parametrize(
    ("flag", "value", "line"),
    [
        ("--gpus-per-trial", "1", "--gpus-per-trial 1: no node of this cluster has a GPU"),
        (
            "--cpus-per-trial",
            "1024",
            "--cpus-per-trial 1024: no node of this cluster has 1024 CPUs",
        ),
    ],
)
def test_cli_refuses_a_trial_this_machine_can_never_hold(tmp_path, flag, value, line):
    """On the embedded Ray: exit 2 in seconds with the one line, no MLflow run, no results."""
    proc = run_cli("sweep", "--space", "smoke.yaml", flag, value, cwd=tmp_path, timeout=180)
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    errors = [text for text in proc.stderr.splitlines() if text.startswith("rkdo-tune: error:")]
    assert len(errors) == 1 and errors[0].startswith(f"rkdo-tune: error: {line} (largest node: ")
    assert not (tmp_path / "mlflow.db").exists()  # checked before the tracker opens the store
    assert not (tmp_path / "rkdo_results").exists()
