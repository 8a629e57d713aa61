"""`rkdo-tune train` as a real subprocess: it trains, writes JSON, and rejects bad input cleanly."""

from __future__ import annotations

import json

import click
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


def _multiple_of(value: float, step_count: int) -> bool:
    return abs(value * step_count - round(value * step_count)) < 1e-9


@pytest.mark.slow
def test_paper_protocol_runs_22_steps_and_scores_704_test_images(tmp_path):
    """11 batches per epoch; 11 test batches of 64: a probe split of 563/141 images.

    Synthetic at 32 px with 4000 images has 800 test images, more than 704: every
    probe accuracy is then a multiple of 1/141, as in the published notebook.
    """
    out = tmp_path / "metrics.json"
    proc = run_cli(
        *("train", "--protocol", "paper", "--epochs", "2", "--eval-every", "2", "--quiet"),
        *("--dataset", "synthetic", "--synthetic-samples", "4000", "--output", str(out)),
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text())
    assert data["steps"] == 22 and data["protocol_version"] == 2
    accuracies = [data["metrics"][key] for key in ("eval/linear_acc", "eval/knn_acc")]
    assert all(_multiple_of(acc, 141) for acc in accuracies), accuracies
    assert any(0 < acc < 1 for acc in accuracies)  # 0 and 1 are multiples of every 1/n
    config = data["config"]
    assert (config["eval_batches"], config["eval_batch_size"], config["kl_eps"]) == (11, 64, 1e-8)


def test_none_on_the_command_line_is_given_and_wins_over_the_preset():
    from click.testing import CliRunner

    from rkdo_tune.cli.options import config_options, given_options
    from rkdo_tune.config import config_from_mapping

    @click.command()
    @config_options
    def show(**fields):
        config = config_from_mapping(given_options(fields), source="command line")
        click.echo(json.dumps([config.steps_per_epoch, config.eval_batches, config.kl_eps]))

    runner = CliRunner()
    given = runner.invoke(show, ["--steps-per-epoch", "none", "--eval-batches", "3"])
    assert json.loads(given.output) == [None, 3, 1e-8]
    assert json.loads(runner.invoke(show, ["--protocol", "paper_latest"]).output) == [10, 10, 0.0]


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
