"""`rkdo-tune audit`: parse flags, then delegate to rkdo_tune.audit."""

from __future__ import annotations

from pathlib import Path

import click

from rkdo_tune.audit import (
    DEFAULT_EXPERIMENT,
    DEFAULT_SEEDS,
    AuditOptions,
    AuditSettings,
)


@click.command("audit")
@click.option("--dataset", help="Dataset of every study (default: each study's, digits).")
@click.option("--model", help="Encoder of every study (default: small_cnn).")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where CIFAR or STL-10 lie on disk (torchvision's layout).",
)
@click.option("--address", help="Ray cluster address; default: a local embedded Ray.")
@click.option("--gpus-per-trial", type=float, help="GPUs per trial; fractions share a card.")
@click.option(
    "--seeds",
    "seed_count",
    type=int,
    default=DEFAULT_SEEDS,
    show_default=True,
    help="Seeds per configuration: the first N of the audit's list; the next N confirm.",
)
@click.option(
    "--steps-per-epoch",
    type=int,
    help="Optimiser steps per epoch in every study (a smaller budget for a rehearsal or a "
    "test; the default is a full pass over the train split).",
)
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="KEY.PATH=VALUE",
    help="Override a key of every study's space, e.g. --set base.lr=0.001 (repeatable).",
)
@click.option("--name", help="Audit name (default: audit-<timestamp>-<4 hex>); for --resume.")
@click.option(
    "--resume",
    is_flag=True,
    help="Continue an interrupted audit (--name, else the experiment's latest unfinished).",
)
@click.option(
    "--tracking-uri",
    help="MLflow tracking URI [default: $MLFLOW_TRACKING_URI, else sqlite:///./mlflow.db].",
)
@click.option(
    "--experiment",
    default=DEFAULT_EXPERIMENT,
    show_default=True,
    help="MLflow experiment holding the audit run and every study's sweep run.",
)
@click.option("--storage", help="Ray Tune results directory or URI. [default: ./rkdo_results]")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for audit.md, its CSVs and each study's report. [default: audit-<name>]",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Print the studies, trials and training runs with a calibrated time estimate.",
)
def audit_command(
    dataset: str | None,
    model: str | None,
    data_dir: Path | None,
    address: str | None,
    gpus_per_trial: float | None,
    seed_count: int,
    steps_per_epoch: int | None,
    sets: tuple[str, ...],
    name: str | None,
    resume: bool,
    tracking_uri: str | None,
    experiment: str,
    storage: str | None,
    out: Path | None,
    dry_run: bool,
) -> None:
    """Test every claim of the RKDO paper against I-Con in one command: four studies as
    nested sweeps in one MLflow experiment, then audit.md with a verdict per claim.

    Example: rkdo-tune audit --dry-run
    """
    from rkdo_tune.audit import dry_run as plan_only
    from rkdo_tune.audit import run_audit

    settings = AuditSettings(
        seeds=seed_count,
        dataset=dataset,
        model=model,
        data_dir=data_dir,
        gpus_per_trial=gpus_per_trial,
        steps_per_epoch=steps_per_epoch,
        sets=sets,
    )
    options = AuditOptions(
        settings=settings,
        name=name,
        experiment=experiment,
        tracking_uri=tracking_uri,
        storage=storage,
        address=address,
        out=out,
        resume=resume,
    )
    if dry_run:
        for line in plan_only(options):
            click.echo(line)
        return
    result = run_audit(options, say=lambda line: click.echo(line, err=True))
    for line in result.lines:
        click.echo(line, err=True)
    if result.interrupted:
        raise SystemExit(130)
    for row in result.rows:
        click.echo(f"claim {row.evidence.number}: {row.verdict}: {row.evidence.claim} ({row.why})")
    click.echo(str(result.markdown))
