"""A lost worker (its node died) is retried without spending --max-failures; a raise is not.

Real Tune trials and Ray's own exception types, as Tune's controller hands them
to `Trial.handle_error` before it asks `should_recover`. The two-node test
(tests/cluster/test_lost_node.py) kills a real raylet.
"""

from __future__ import annotations

import pytest
import ray
from ray.exceptions import ActorUnavailableError, RayTaskError
from ray.train._internal.storage import StorageContext
from ray.tune.experiment import Trial

from rkdo_tune.sweep._arms import StudyFIFO
from rkdo_tune.sweep._failures import LOST_WORKER_RETRIES, is_lost_worker


@pytest.fixture(scope="module")
def local_ray():
    """Tune's trials write their error file under Ray's session folder."""
    ray.init(num_cpus=1, include_dashboard=False, configure_logging=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture
def make_trial(local_ray, tmp_path):
    def make(max_failures: int) -> Trial:
        storage = StorageContext(
            storage_path=str(tmp_path), experiment_dir_name="exp", trial_dir_name="t"
        )
        trial = Trial(
            "sweep_trial", trial_id="t", storage=storage, max_failures=max_failures, stub=True
        )
        trial.init_local_path()
        StudyFIFO().on_trial_add(None, trial)  # as Tune adds every trial, restored ones too
        return trial

    return make


def _node_lost() -> ActorUnavailableError:
    # What Tune got when the test cluster's second raylet was killed under a trial.
    return ActorUnavailableError("RpcError: RPC error: Socket closed rpc_code: 14", None)


def _raised() -> RayTaskError:
    return RayTaskError("sweep_trial", "Traceback ...", RuntimeError("injected failure"))


@pytest.mark.slow
@pytest.mark.ray
def test_a_lost_worker_is_retried_even_with_max_failures_0(make_trial):
    trial = make_trial(max_failures=0)
    for _ in range(LOST_WORKER_RETRIES):
        trial.handle_error(_node_lost())
        assert trial.should_recover()
    trial.handle_error(_node_lost())  # a node lost again and again: then it counts
    assert not trial.should_recover()


@pytest.mark.slow
@pytest.mark.ray
def test_an_error_the_trial_raised_still_spends_max_failures(make_trial):
    trial = make_trial(max_failures=1)
    trial.handle_error(_raised())
    assert trial.should_recover()  # --max-failures 1: one retry
    trial.handle_error(_node_lost())
    assert trial.should_recover()  # the node loss in between costs nothing
    trial.handle_error(_raised())
    assert not trial.should_recover()


def test_only_actor_losses_count_as_lost_workers():
    assert is_lost_worker(_node_lost())
    assert is_lost_worker(RayTaskError("f", "tb", _node_lost()))  # wrapped by a task
    assert not is_lost_worker(_raised())
    assert not is_lost_worker(None)
