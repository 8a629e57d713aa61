"""`rkdo-tune sweep` and `rkdo-tune spaces`: parse flags, then delegate to rkdo_tune.sweep."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from rkdo_tune.app import launch_sweep
from rkdo_tune.sweep.plan import DEFAULT_PENDING_TIMEOUT_S, SweepOptions, plan_sweep
from rkdo_tune.sweep.space import list_spaces, load_space
from rkdo_tune.sweep.summary import format_dry_run, format_outcome, resume_command


def _shortcut_overrides(dataset: str | None, data_dir: Path | None, download: bool) -> list[str]:
    sets = []
    if dataset:
        sets.append(f"base.dataset={dataset}")
    if data_dir is not None:  # absolute, so workers on any node read the same path
        sets.append(f"base.data_dir={data_dir.expanduser().resolve()}")
    if download:
        sets.append("base.download=true")
    return sets


@click.command("sweep")
@click.option(
    "--space",
    "space_name",
    required=True,
    help="Search-space YAML: a path, or a packaged name such as alpha_ablation.yaml.",
)
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="KEY.PATH=VALUE",
    help="Override a space key, e.g. --set base.epochs=3 (repeatable).",
)
@click.option(
    "--num-samples", type=int, help="Configurations to try (overrides search.num_samples)."
)
@click.option("--max-concurrent", type=int, help="Trials running at once.")
@click.option("--cpus-per-trial", type=float, help="CPUs per trial (overrides resources.cpus).")
@click.option(
    "--gpus-per-trial",
    type=float,
    help="GPUs per trial; fractions share a card (0.25 = four trials per GPU).",
)
@click.option(
    "--address",
    help="Ray cluster address (ray://host:10001 or host:6379); default: a local embedded Ray.",
)
@click.option(
    "--storage",
    help="Results directory or URI (shared storage on a cluster). [default: ./rkdo_results]",
)
@click.option("--name", help="Sweep name (default: <space>-<timestamp>-<4 hex>); for --resume.")
@click.option("--resume", is_flag=True, help="Continue the sweep called --name.")
@click.option("--dataset", help="Shortcut for --set base.dataset=NAME.")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Shortcut for --set base.data_dir=DIR.",
)
@click.option("--download", is_flag=True, help="Shortcut for --set base.download=true.")
@click.option(
    "--optuna-storage",
    help="Persist the Optuna study to this RDB URL "
    "(e.g. sqlite:///optuna.db) so optuna-dashboard can open it.",
)
@click.option(
    "--tracking-uri",
    help="MLflow tracking URI (http://host:5000 or sqlite:///path.db) "
    "[default: $MLFLOW_TRACKING_URI, else sqlite:///./mlflow.db].",
)
@click.option("--experiment", help="MLflow experiment name (default: the space name).")
@click.option(
    "--max-failures", type=int, default=0, show_default=True, help="Retries of a trial that raised."
)
@click.option(
    "--pending-timeout",
    type=float,
    default=DEFAULT_PENDING_TIMEOUT_S,
    show_default=True,
    metavar="SECONDS",
    help="On a cluster with an autoscaler: end the sweep when no trial could start for this long.",
)
@click.option(
    "--no-baseline",
    is_flag=True,
    help="Run no I-Con control arm (same as baseline: null in the space).",
)
@click.option(
    "--confirm",
    "confirm_top",
    type=int,
    help="Re-run the top K configurations and the baseline on fresh seeds (confirm.top).",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Print the resolved space, trial count, resources and storage; start nothing.",
)
def sweep_command(
    space_name: str,
    sets: tuple[str, ...],
    num_samples: int | None,
    max_concurrent: int | None,
    cpus_per_trial: float | None,
    gpus_per_trial: float | None,
    address: str | None,
    storage: str | None,
    name: str | None,
    resume: bool,
    dataset: str | None,
    data_dir: Path | None,
    download: bool,
    optuna_storage: str | None,
    tracking_uri: str | None,
    experiment: str | None,
    max_failures: int,
    pending_timeout: float,
    no_baseline: bool,
    confirm_top: int | None,
    dry_run: bool,
) -> None:
    """Run a hyperparameter study: Optuna proposes, Ray Tune trains, every seed in lockstep.

    Example: rkdo-tune sweep --space alpha_ablation.yaml
    """
    overrides = [*sets, *_shortcut_overrides(dataset, data_dir, download)]
    space = load_space(space_name, overrides=overrides).with_updates(
        num_samples=num_samples,
        max_concurrent=max_concurrent,
        cpus=cpus_per_trial,
        gpus=gpus_per_trial,
        confirm_top=confirm_top,
        no_baseline=no_baseline,
    )
    options = SweepOptions(
        name=name,
        storage=storage,
        address=address,
        resume=resume,
        optuna_storage=optuna_storage,
        max_failures=max_failures,
        pending_timeout_s=pending_timeout,
        tracking_uri=tracking_uri,
        experiment=experiment,
    )
    plan = plan_sweep(space, options)
    if dry_run:
        click.echo(format_dry_run(space, plan))
        return
    outcome, tracking_lines = launch_sweep(space, plan, options)
    resume = resume_command(sys.argv[1:], plan.name)
    click.echo(format_outcome(outcome, space, extra_lines=tuple(tracking_lines), resume=resume))
    if outcome.unfinished:
        raise SystemExit(130)  # interrupted (Ctrl-C or SIGTERM); state saved for --resume


@click.group("spaces", invoke_without_command=True)
@click.pass_context
def spaces_group(ctx: click.Context) -> None:
    """List the packaged search spaces, or validate one with `spaces validate FILE`."""
    if ctx.invoked_subcommand is None:
        for file_name, summary in list_spaces():
            click.echo(f"{file_name:<28} {summary}")


@spaces_group.command("validate")
@click.argument("space_file")
@click.option("--set", "sets", multiple=True, metavar="KEY.PATH=VALUE", help="Overrides to apply.")
def validate_command(space_file: str, sets: tuple[str, ...]) -> None:
    """Check a search-space file without running it (exit 2 with one line if it is invalid)."""
    space = load_space(space_file, overrides=list(sets))
    objectives = ", ".join(f"{o.name} ({o.mode})" for o in space.objectives)
    click.echo(
        f"{space.source}: valid ({len(space.parameters)} parameters, "
        f"{space.search.num_samples} samples x {len(space.seeds)} seeds; optimises {objectives})"
    )
