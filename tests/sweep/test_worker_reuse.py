"""Ray reuses one worker process for trial after trial; a trial must not feel the one before it."""

from __future__ import annotations

import json
import math

import pytest
import torch
from _support import run_cli

from rkdo_tune import metrics as m
from rkdo_tune.sweep.space import load_space, trial_config
from rkdo_tune.training import train


def _final_results(experiment) -> list[dict]:
    finals = []
    for trial_dir in sorted(p for p in experiment.iterdir() if p.name.startswith("sweep_trial")):
        lines = (trial_dir / "result.json").read_text().splitlines()
        finals.append(json.loads(lines[-1]))
    return sorted(finals, key=lambda result: result["timestamp"])


@pytest.mark.slow
@pytest.mark.ray
def test_trials_share_one_worker_and_match_a_fresh_direct_run(tmp_path):
    overrides = ["search.max_concurrent=1", "base.device=cpu"]
    proc = run_cli(
        "sweep",
        "--space",
        "smoke.yaml",
        "--name",
        "reuse",
        "--storage",
        str(tmp_path / "results"),
        *[arg for item in overrides for arg in ("--set", item)],
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    first, second = _final_results(tmp_path / "results" / "reuse")
    assert first["pid"] == second["pid"], "Ray started a new worker for the second trial"
    assert first["config"]["objective"] != second["config"]["objective"]

    # The second trial ran after another objective in the same process; a fresh
    # in-process run of its configuration (same thread count) must agree exactly.
    space = load_space("smoke.yaml", overrides=overrides)
    config = trial_config(space, second["config"], seed=space.seeds[0])
    threads = torch.get_num_threads()
    torch.set_num_threads(int(space.resources.cpus))
    try:
        direct = train(config)
    finally:
        torch.set_num_threads(threads)
    for key in (m.EVAL_LINEAR_ACC, m.EVAL_KNN_ACC, m.EVAL_YARDSTICK_LOSS, m.TRAIN_EPOCH_LOSS):
        assert math.isfinite(second[key])
        assert second[key] == pytest.approx(direct.metrics[key], rel=1e-6, abs=1e-9), key
