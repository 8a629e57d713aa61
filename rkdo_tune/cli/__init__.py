"""The `rkdo-tune` command line: parses arguments and delegates; holds no logic.

Every user mistake surfaces as one line on stderr and exit code 2 (1 for an
unreachable environment), never a traceback.
"""

from __future__ import annotations

import sys

import click

from rkdo_tune import __version__
from rkdo_tune.cli.audit_cmd import audit_command
from rkdo_tune.cli.report_cmd import report_command
from rkdo_tune.cli.sweep_cmd import spaces_group, sweep_command
from rkdo_tune.cli.train_cmd import train_command
from rkdo_tune.errors import UsageError


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="rkdo-tune")
def cli() -> None:
    """Hyperparameter studies of RKDO against I-Con.

    `train` runs one trial; `sweep` runs a Ray Tune + Optuna study from a YAML
    search space; `spaces` lists and validates spaces; `report` compares trials
    stored in MLflow; `audit` tests every claim of the paper in one command.
    """


cli.add_command(train_command)
cli.add_command(sweep_command)
cli.add_command(spaces_group)
cli.add_command(report_command)
cli.add_command(audit_command)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: run the CLI and turn user errors into one line."""
    try:
        code = cli.main(args=argv, prog_name="rkdo-tune", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("rkdo-tune: interrupted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        click.echo(f"rkdo-tune: error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except UsageError as exc:
        click.echo(f"rkdo-tune: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    sys.exit(code if isinstance(code, int) else 0)
