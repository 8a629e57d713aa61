"""`rkdo-tune report`: parse flags, then delegate to rkdo_tune.report."""

from __future__ import annotations

from pathlib import Path

import click

from rkdo_tune.metrics import EVAL_METRICS


@click.command("report")
@click.option("--experiment", help="MLflow experiment (the space name unless overridden).")
@click.option("--sweep", "sweep_run_id", metavar="PARENT_RUN_ID", help="A sweep's parent run id.")
@click.option(
    "--all-sweeps",
    is_flag=True,
    help="With --experiment: one report per sweep, not only the latest.",
)
@click.option(
    "--tracking-uri",
    help="MLflow tracking URI. [default: $MLFLOW_TRACKING_URI, else sqlite:///./mlflow.db]",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Output folder. [default: report-<sweep name>]",
)
@click.option(
    "--target",
    type=float,
    help="Eval value counting as reached for compute-to-target. "
    "[default: the I-Con control's final seed-mean]",
)
@click.option(
    "--target-fraction",
    type=click.FloatRange(min=0, min_open=True),
    help="Target = this fraction of the I-Con control's final seed-mean (of the best final "
    "mean without an I-Con run). [default: 1.0; 0.9 without an I-Con run]",
)
@click.option(
    "--metric",
    type=click.Choice(EVAL_METRICS),
    help="Eval metric to rank and target. [default: the sweep's metric]",
)
def report_command(
    experiment: str | None,
    sweep_run_id: str | None,
    all_sweeps: bool,
    tracking_uri: str | None,
    out: Path | None,
    target: float | None,
    target_fraction: float | None,
    metric: str | None,
) -> None:
    """Compare a sweep's trials: leaderboard, paired RKDO vs I-Con tests, compute-to-target,
    the paper-claims table and plots, written as Markdown + PNG and logged to the sweep's run.

    Example: rkdo-tune report --experiment alpha_ablation
    """
    from rkdo_tune.report import write_reports  # imports MLflow: only when reporting

    if target is not None and target_fraction is not None:
        raise click.UsageError("give at most one of --target and --target-fraction")

    results = write_reports(
        tracking_uri=tracking_uri,
        experiment=experiment,
        sweep=sweep_run_id,
        all_sweeps=all_sweeps,
        out=out,
        target=target,
        target_fraction=target_fraction,
        metric=metric,
        say=lambda line: click.echo(line, err=True),
    )
    for result in results:
        click.echo(f"logged to {result.artifact_uri}", err=True)
        click.echo(str(result.markdown))
