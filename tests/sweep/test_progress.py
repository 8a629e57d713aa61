"""The sweep's live output: the trial table's status column and the one-line progress summary.

Real Tune `Trial` objects (stubs: no Ray session) go through the real callback.
"""

from __future__ import annotations

import io
import math

import pytest
from ray.tune.experiment import Trial

from rkdo_tune import metrics as m
from rkdo_tune.sweep._progress_line import (
    ProgressCounts,
    ProgressTotals,
    format_duration,
    status_cell,
    summary_line,
)
from rkdo_tune.sweep.progress import LiveProgress
from rkdo_tune.sweep.protocol import EPOCH_KEY, STATUS_KEY
from rkdo_tune.sweep.space import load_space

METRIC = m.EVAL_LINEAR_ACC


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _trial(trial_id: str, status: str) -> Trial:
    """A Tune trial with no Ray session (and so no trial folder)."""
    trial = Trial("__fake", config={"objective": "rkdo"}, trial_id=trial_id, stub=True)
    trial.set_status(status)
    return trial


def _interim(epoch: int, value: float) -> dict:
    """A report between evaluations: aggregate() says "completed" while every seed runs."""
    return {METRIC: value, EPOCH_KEY: epoch, STATUS_KEY: "completed"}


def _final(epoch: int, value: float, status: str) -> dict:
    return {**_interim(epoch, value), STATUS_KEY: status, m.DIAG_STEPS: 10.0}


def _status_column(text: str, trial_id: str) -> str:
    row = next(line for line in text.splitlines() if line.startswith(trial_id))
    return row.split()[-1]


def _progress(stream: io.StringIO) -> LiveProgress:
    totals = ProgressTotals.of(load_space("smoke.yaml"), epochs=2)
    return LiveProgress(metric=METRIC, mode="max", stream=stream, totals=totals)


def test_a_running_trial_reads_running_not_completed():
    stream = io.StringIO()
    progress = _progress(stream)
    trial = _trial("aaaa0001", Trial.RUNNING)
    progress.on_trial_result(1, [trial], trial, _interim(1, 0.5))
    progress.on_experiment_end([trial])  # the table, as after an interrupt
    assert _status_column(stream.getvalue(), "aaaa0001") == "running"


@pytest.mark.parametrize(
    ("state", "report", "shown"),
    [
        (Trial.TERMINATED, _final(2, 0.8, "early_stopped"), "early_stopped"),
        (Trial.TERMINATED, _interim(1, 0.5), "stopped"),  # a scheduler ended it early
        (Trial.ERROR, _interim(1, 0.5), "failed"),
        (Trial.PENDING, None, "pending"),
    ],
)
def test_an_ended_trial_reads_how_it_ended(state, report, shown):
    stream = io.StringIO()
    progress = _progress(stream)
    trial = _trial("aaaa0002", state)
    if report is not None:
        progress.on_trial_result(1, [trial], trial, report)
    progress.on_experiment_end([trial])
    assert _status_column(stream.getvalue(), "aaaa0002") == shown


def test_status_cell_uses_only_a_final_reports_status():
    assert status_cell(Trial.RUNNING, None) == "running"
    assert status_cell(Trial.RUNNING, "diverged") == "diverged"
    assert status_cell(Trial.TERMINATED, "completed") == "completed"


def test_without_a_terminal_the_summary_is_a_plain_line_per_ended_trial():
    stream = io.StringIO()
    progress = _progress(stream)
    first, second = _trial("aaaa0001", Trial.RUNNING), _trial("aaaa0002", Trial.RUNNING)
    progress.on_trial_result(1, [first, second], first, _interim(1, 0.5))
    first.set_status(Trial.TERMINATED)
    progress.on_trial_complete(2, [first, second], first)
    second.set_status(Trial.ERROR)
    progress.on_trial_error(3, [first, second], second)
    lines = [line for line in stream.getvalue().splitlines() if line.startswith("progress: ")]
    assert lines[0].startswith("progress: configurations 1/2 · seeds 1/2 · failures 0 · elapsed ")
    assert lines[1].startswith("progress: configurations 2/2 · seeds 2/2 · failures 1 · elapsed ")
    assert "[aaaa0002] ERROR (see the trial log)" in stream.getvalue()
    assert "\r" not in stream.getvalue()


def test_on_a_terminal_the_summary_is_a_tqdm_bar():
    stream = Terminal()
    progress = _progress(stream)
    trial = _trial("aaaa0001", Trial.RUNNING)
    progress.on_trial_result(1, [trial], trial, _interim(1, 0.5))
    trial.set_status(Trial.TERMINATED)
    progress.on_trial_complete(2, [trial], trial)
    text = stream.getvalue()
    assert "progress: " not in text
    assert "configurations 1/2 · seeds 1/2 · failures 0" in text and "\r" in text
    assert "[aaaa0001] epoch 1" in text  # report lines still print, above the bar
    progress.on_experiment_end([trial])


def test_trials_a_resumed_sweep_restored_as_ended_count_as_done():
    stream = io.StringIO()
    progress = _progress(stream)
    restored, running = _trial("aaaa0001", Trial.TERMINATED), _trial("aaaa0002", Trial.RUNNING)
    progress.on_trial_result(1, [restored, running], running, _interim(1, 0.5))
    running.set_status(Trial.TERMINATED)
    progress.on_trial_complete(2, [restored, running], running)
    assert "progress: configurations 2/2 · seeds 2/2 · failures 0" in stream.getvalue()


def test_the_eta_extrapolates_the_time_per_trial_epoch():
    totals = ProgressTotals(configurations={"search": 4}, seeds={"search": 3}, epochs=5)
    counts = ProgressCounts()
    counts.end("a", "search")  # 5 trial-epochs done
    counts.epochs["b"] = 5  # and 5 more running: half of 4 x 5, so as long again
    line = summary_line(totals, counts, elapsed=60.0)
    assert line == ("configurations 1/4 · seeds 3/12 · failures 0 · elapsed 0:01:00 · ETA 0:01:00")
    assert summary_line(totals, ProgressCounts(), elapsed=1.0).endswith("ETA n/a")
    assert format_duration(math.nan) == "n/a" and format_duration(3725) == "1:02:05"
