"""A trial whose worker is lost is retried, and that is not counted against --max-failures.

A node that dies, or a worker process that is killed, takes its trial with it:
that is not the trial's fault. Tune counts every failure against one budget
(`FailureConfig.max_failures`), and a lost worker reaches it only as an actor
error (`ActorUnavailableError` when the node's raylet vanishes, `ActorDiedError`
once the cluster declares the node dead). So every trial Tune adds becomes a
`LostWorkerRetried` trial, whose error accounting gives a lost worker back, up
to `LOST_WORKER_RETRIES` times per trial; Tune then restarts it from its last
checkpoint on a node that is still there. `--max-failures` stays the budget of
the trial's own errors (an exception raised by training).
"""

from __future__ import annotations

from ray.exceptions import RayActorError, RayTaskError
from ray.tune.experiment import Trial

LOST_WORKER_RETRIES = 3


def is_lost_worker(error: BaseException | None) -> bool:
    """The trial's actor vanished (its node or process died); not an error it raised."""
    if isinstance(error, RayTaskError):
        error = error.as_instanceof_cause()
    return isinstance(error, RayActorError)


class LostWorkerRetried(Trial):
    """A Tune trial that does not count a lost worker as one of its failures."""

    lost_workers = 0  # kept in the experiment state once set (an instance attribute)

    def handle_error(self, exc: BaseException | None = None) -> None:
        counted = self.run_metadata.num_failures
        super().handle_error(exc)
        lost = self.run_metadata.num_failures > counted and is_lost_worker(exc)
        if lost and self.lost_workers < LOST_WORKER_RETRIES:
            self.lost_workers += 1
            self.run_metadata.num_failures = counted


def retry_lost_workers(trial: Trial) -> None:
    """Give `trial` (as Tune created or restored it) the lost-worker accounting above."""
    if type(trial) is Trial:
        trial.__class__ = LostWorkerRetried
