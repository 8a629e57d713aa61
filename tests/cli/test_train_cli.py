"""`rkdo-tune train` as a real subprocess: it trains, writes JSON, and rejects bad input cleanly."""

from __future__ import annotations

import json

import pytest
from _support import run_cli


@pytest.mark.slow
def test_train_writes_metrics_json(tmp_path):
    out = tmp_path / "metrics.json"
    proc = run_cli(
        "train",
        "--objective",
        "icon",
        "--dataset",
        "digits",
        "--epochs",
        "1",
        "--steps-per-epoch",
        "3",
        "--quiet",
        "--output",
        str(out),
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text())
    assert data["status"] == "completed"
    assert data["steps"] == 3
    assert 0.0 <= data["metrics"]["eval/linear_acc"] <= 1.0
    assert "eval/linear_acc" in proc.stdout


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--alpha", "1.5"], ["'alpha'", "1.5", "(0, 1]"]),
        (["--depth", "0"], ["'depth'", "0"]),
        (["--tau", "0"], ["'tau'", "0"]),
        (["--beta", "1"], ["'beta'", "1"]),
        (["--dataset", "mnist"], ["--dataset", "mnist"]),
        (["--alpha", "abc"], ["--alpha", "abc"]),
        (["--config", "does/not/exist.yaml"], ["does/not/exist.yaml"]),
        (["--no-such-flag"], ["--no-such-flag"]),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, fragments):
    proc = run_cli("train", "--quiet", *args)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_missing_dataset_names_the_directory_and_the_flag(tmp_path):
    proc = run_cli("train", "--quiet", "--dataset", "cifar10", "--data-dir", str(tmp_path))
    assert proc.returncode == 2
    assert str(tmp_path) in proc.stderr and "--download" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_help_lists_every_config_flag():
    from rkdo_tune.config import FIELDS

    proc = run_cli("train", "--help")
    assert proc.returncode == 0
    for name in FIELDS:
        assert "--" + name.replace("_", "-") in proc.stdout
