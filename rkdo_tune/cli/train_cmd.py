"""`rkdo-tune train`: one trial of either objective, from flags and/or a YAML config."""

from __future__ import annotations

from pathlib import Path

import click

from rkdo_tune.cli.options import config_options, given_options
from rkdo_tune.config import config_from_mapping, load_config_file
from rkdo_tune.console import ProgressBar, print_result, write_result_json
from rkdo_tune.training.callbacks import CallbackList, CheckpointEveryEval


@click.command("train")
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="YAML file of config keys; flags given on the command line win over it.",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write final metrics, status and the metric history to this JSON file.",
)
@click.option(
    "--checkpoint-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Checkpoint after every evaluation and resume from here if a checkpoint exists.",
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
@config_options
def train_command(
    config_file: Path | None,
    output: Path | None,
    checkpoint_dir: Path | None,
    quiet: bool,
    **fields: object,
) -> None:
    """Train one RKDO or I-Con trial, evaluate it, and print its metrics.

    Example: rkdo-tune train --objective rkdo --dataset digits --epochs 3
    """
    overrides = given_options(fields)
    if config_file is not None:
        config = load_config_file(config_file, overrides)
    else:
        config = config_from_mapping(overrides, source="command line")
    from rkdo_tune.training import train  # torch loads here, after the config is valid

    callbacks = [] if quiet else [ProgressBar()]
    if checkpoint_dir is not None:
        callbacks.append(CheckpointEveryEval(checkpoint_dir))
    result = train(config, callback=CallbackList(callbacks), checkpoint_dir=checkpoint_dir)
    print_result(result)
    if output is not None:
        write_result_json(result, output)
        click.echo(f"wrote {output}")
