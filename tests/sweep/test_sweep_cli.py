"""`rkdo-tune sweep` end to end as a real subprocess against a real local Ray."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _support import run_cli


def test_dry_run_prints_the_plan_and_starts_nothing(tmp_path):
    proc = run_cli(
        "sweep",
        "--space",
        "smoke.yaml",
        "--dry-run",
        "--name",
        "dry",
        "--storage",
        str(tmp_path / "results"),
        "--set",
        "base.epochs=3",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert "training runs: 2" in proc.stdout
    assert "epochs: 3" in proc.stdout
    assert "dry run: nothing was started" in proc.stdout
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--space", "no_such_space.yaml"], ["no_such_space"]),
        (["--space", "smoke.yaml", "--set", "base.alpah=0.3"], ["alpah", "alpha"]),
        (["--space", "smoke.yaml", "--set", "search.num_samples=0"], ["num_samples", "0"]),
        (["--space", "smoke.yaml", "--cpus-per-trial", "0"], ["cpus", "0"]),
        (["--space", "smoke.yaml", "--gpus-per-trial", "-1"], ["gpus", "-1"]),
        (["--space", "smoke.yaml", "--resume"], ["--resume", "--name"]),
    ],
)
def test_bad_sweep_input_is_one_line_exit_2_and_starts_nothing(tmp_path, args, fragments):
    proc = run_cli("sweep", *args, "--storage", str(tmp_path / "results"), cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for fragment in fragments:
        assert fragment in lines[0]
    assert not (tmp_path / "results").exists()
    assert not (tmp_path / "mlflow.db").exists()


@pytest.mark.slow
@pytest.mark.ray
def test_smoke_sweep_runs_on_local_ray(tmp_path):
    storage = tmp_path / "results"
    proc = run_cli(
        "sweep",
        "--space",
        "smoke.yaml",
        "--name",
        "smoke-test",
        "--storage",
        str(storage),
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "sweep smoke-test: 2 configurations, 0 errors" in out
    assert "rank" in out and "objective" in out
    experiment = storage / "smoke-test"
    trial_dirs = [
        p for p in experiment.iterdir() if p.is_dir() and p.name.startswith("sweep_trial")
    ]
    assert len(trial_dirs) == 2
    for trial_dir in trial_dirs:
        results = [
            json.loads(line) for line in (trial_dir / "result.json").read_text().splitlines()
        ]
        assert [r["epoch"] for r in results] == [1, 2]  # one report per evaluated epoch
        assert results[-1]["trial_status"] == "completed"
        assert 0.0 <= results[-1]["eval/linear_acc"] <= 1.0
        assert "seed_42/eval/linear_acc" in results[-1]
        assert "diag/early_stop_step" in results[-1]
        assert any(Path(trial_dir).glob("checkpoint_*/seed_42/trainer_state.pt"))
