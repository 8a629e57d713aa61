"""On a cluster that may grow, trials can wait for a node: say what for, and give up in time.

`PendingWatch` is a Tune callback for clusters with an autoscaler, where the
placement check (`sweep.placement`) cannot rule a request out. While trials
are pending and none runs, it prints what they wait for every 30 s; after
`--pending-timeout` seconds it ends the sweep with one line (`PendingTimeout`).
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any, TextIO

from ray import tune

from rkdo_tune.errors import UsageError
from rkdo_tune.sweep._schema import Resources
from rkdo_tune.sweep.placement import ClusterShape, NodeShape, survey_here, unplaceable

if TYPE_CHECKING:
    from ray.tune.experiment import Trial

WAITING_LINE_EVERY_S = 30.0


class PendingTimeout(UsageError):
    """No trial could start within --pending-timeout: the cluster did not grow to fit one."""


class PendingWatch(tune.Callback):
    """Counts how long trials have pended with none running; reports, then gives up."""

    def __init__(
        self, *, request: Resources, timeout_s: float, stream: TextIO | None = None
    ) -> None:
        self.request, self.timeout_s, self.stream = request, timeout_s, stream
        self.since: float | None = None  # when the current stall began (monotonic)
        self.last_line = 0.0

    def setup(self, **info: Any) -> None:
        self.since = None  # a restored callback's clock is another process's

    def on_step_begin(self, iteration: int, trials: list[Trial], **info: Any) -> None:
        statuses = [trial.status for trial in trials]
        if "PENDING" not in statuses or "RUNNING" in statuses:
            self.since = None
            return
        now = time.monotonic()
        if self.since is None:
            self.since = self.last_line = now
            return
        waited = now - self.since
        if waited >= self.timeout_s:
            raise PendingTimeout(self.timeout_line())
        if now - self.last_line >= WAITING_LINE_EVERY_S:
            self.last_line = now
            print(
                self.waiting_line(statuses.count("PENDING"), waited),
                file=self.stream or sys.stdout,
                flush=True,
            )

    def waiting_line(self, pending: int, waited: float) -> str:
        what = NodeShape(self.request.cpus, self.request.gpus).describe()
        return (
            f"waiting for a node with {what} free: {pending} trial{'' if pending == 1 else 's'} "
            f"pending for {waited:.0f} s, none running (the sweep ends after "
            f"--pending-timeout {self.timeout_s:g} s)"
        )

    def timeout_line(self) -> str:
        """The placement check's line against the nodes there are now, or why they will not do."""
        # Tune's loop runs in the driver, or over ray:// in an actor: connected either way.
        nodes = survey_here(embedded=True).nodes
        line = unplaceable(self.request, ClusterShape(nodes))
        if line is None:
            what = NodeShape(self.request.cpus, self.request.gpus).describe()
            line = f"no node had {what} free for a trial ({ClusterShape(nodes).describe()})"
        return f"{line}; gave up after --pending-timeout {self.timeout_s:g} s"
