"""The sweep's one-line progress summary and the live table's status cell (no Ray: pure).

    configurations 3/11 · seeds 9/33 · failures 0 · elapsed 0:02:31 · ETA 0:05:02

A configuration is one Tune trial; its seeds train in lockstep, so a trial that
ends (finished, stopped by the scheduler, or failed) counts all its seeds done.
The ETA extrapolates the time per trial-epoch so far to the epochs still to run,
counting every unfinished trial at the full budget (an early stop only shortens it).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from rkdo_tune.console import MISSING
from rkdo_tune.sweep.space import SearchSpace, confirmation_trial_count, search_trial_count
from rkdo_tune.verdict import STAGE_CONFIRMATION, STAGE_SEARCH

# Tune's trial states, and what the status column says of them before a final report.
TERMINATED, ERROR = "TERMINATED", "ERROR"
STATUS_FAILED = "failed"
STATUS_STOPPED = "stopped"  # ended without its final report: a scheduler stopped it


def status_cell(state: str, final_status: str | None) -> str:
    """The status column: the trial's own final status once it has one, else its Tune state.

    final_status: the status of the trial's final report (None until that report,
    whose interim "completed" only means no seed has stopped yet).
    """
    if state == ERROR:
        return STATUS_FAILED
    if final_status:
        return final_status
    if state == TERMINATED:
        return STATUS_STOPPED
    return state.lower()  # running, pending, paused


@dataclass(frozen=True)
class ProgressTotals:
    """How big the sweep is: configurations and seeds per stage, epochs per configuration."""

    configurations: Mapping[str, int]  # stage -> Tune trials
    seeds: Mapping[str, int]  # stage -> seeds per trial
    epochs: int  # the most a trial runs

    @classmethod
    def of(cls, space: SearchSpace, *, epochs: int) -> ProgressTotals:
        confirm_seeds = len(space.confirm.seeds) if space.confirm is not None else 0
        return cls(
            configurations={
                STAGE_SEARCH: search_trial_count(space),
                STAGE_CONFIRMATION: confirmation_trial_count(space),
            },
            seeds={STAGE_SEARCH: len(space.seeds), STAGE_CONFIRMATION: confirm_seeds},
            epochs=max(1, epochs),
        )

    @property
    def total_configurations(self) -> int:
        return sum(self.configurations.values())

    @property
    def total_seeds(self) -> int:
        return sum(n * self.seeds.get(stage, 0) for stage, n in self.configurations.items())


@dataclass
class ProgressCounts:
    """What has happened so far: trials ended (by stage), failed, and running trials' epochs."""

    ended: dict[str, str] = field(default_factory=dict)  # trial id -> stage
    failed: set[str] = field(default_factory=set)
    epochs: dict[str, int] = field(default_factory=dict)  # running trial id -> epochs done

    def end(self, trial_id: str, stage: str, *, failed: bool = False) -> None:
        self.ended[trial_id] = stage
        self.epochs.pop(trial_id, None)
        if failed:
            self.failed.add(trial_id)

    def seeds_done(self, totals: ProgressTotals) -> int:
        return sum(totals.seeds.get(stage, 0) for stage in self.ended.values())

    def work_done(self, totals: ProgressTotals) -> float:
        """Trial-epochs done: every ended trial at the full budget, running ones as reported."""
        running = sum(min(e, totals.epochs) for e in self.epochs.values())
        return len(self.ended) * totals.epochs + running


def format_duration(seconds: float) -> str:
    """'0:02:31'; `MISSING` when unknown."""
    if not math.isfinite(seconds) or seconds < 0:
        return MISSING
    whole = round(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def eta_seconds(totals: ProgressTotals, counts: ProgressCounts, elapsed: float) -> float:
    done = counts.work_done(totals)
    total = totals.total_configurations * totals.epochs
    if done <= 0:
        return math.nan
    return elapsed * max(0.0, total - done) / done


def summary_line(totals: ProgressTotals, counts: ProgressCounts, elapsed: float) -> str:
    """The one-line progress summary."""
    return (
        f"configurations {len(counts.ended)}/{totals.total_configurations} · "
        f"seeds {counts.seeds_done(totals)}/{totals.total_seeds} · "
        f"failures {len(counts.failed)} · elapsed {format_duration(elapsed)} · "
        f"ETA {format_duration(eta_seconds(totals, counts, elapsed))}"
    )
