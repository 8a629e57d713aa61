"""Orchestration of `rkdo-tune report`: choose the sweeps, load each, compute, draw, write, log.

Reads through `rkdo_tune.tracking.reading` (MLflow stays inside the tracking
package), computes with `_stats`, `_pairs` and `_targets`, draws with `_plots`
and writes with `_markdown`, then logs the folder to the sweep's parent run.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from rkdo_tune import __version__
from rkdo_tune import metrics as m
from rkdo_tune.errors import UsageError
from rkdo_tune.report import _markdown, _pairs, _plots, _stats, _targets
from rkdo_tune.tracking import reading


@dataclass(frozen=True)
class ReportResult:
    sweep_name: str
    parent_run_id: str
    markdown: Path
    artifact_uri: str


def write_reports(
    *,
    tracking_uri: str | None,
    experiment: str | None,
    sweep: str | None,
    all_sweeps: bool = False,
    out: Path | None = None,
    target: float | None = None,
    metric: str | None = None,
    say: Callable[[str], None] = print,
) -> list[ReportResult]:
    """One report per chosen sweep (the latest of `experiment` unless `all_sweeps`)."""
    if bool(experiment) == bool(sweep):
        raise UsageError("report: give exactly one of --experiment NAME or --sweep PARENT_RUN_ID")
    client = reading.connect(reading.resolve_report_uri(tracking_uri))
    infos = reading.find_sweeps(client, experiment=experiment, sweep=sweep)
    if len(infos) > 1 and not all_sweeps:
        say(
            f"experiment '{experiment}' has {len(infos)} sweeps; reporting the latest, "
            f"'{infos[0].sweep_name}' (run {infos[0].run_id}); --all-sweeps reports each"
        )
        infos = infos[:1]
    results = []
    for info in infos:
        folder = Path(f"report-{_safe(info.sweep_name)}")
        if out is not None:
            folder = out / _safe(info.sweep_name) if len(infos) > 1 else out
        markdown = write_sweep_report(client, info, out_dir=folder, target=target, metric=metric)
        uri = reading.log_report(client, run_id=info.run_id, directory=folder)
        results.append(ReportResult(info.sweep_name, info.run_id, markdown, uri))
    return results


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


def write_sweep_report(
    client: reading.MlflowClient,
    info: reading.SweepInfo,
    *,
    out_dir: Path,
    target: float | None,
    metric: str | None,
) -> Path:
    """Load one sweep, compute every table, draw every plot; returns the report.md path."""
    metric = metric or info.metric
    mode = info.mode if metric == info.metric else m.MODE_OF.get(metric, "max")
    runs = reading.load_sweep(client, info, history_keys=(m.TRAIN_LOSS, metric))
    seeds = runs.seeds
    _check_loaded(info, seeds, metric=metric)
    out_dir.mkdir(parents=True, exist_ok=True)
    params = [n for n in _sampled_names(info, runs) if n in seeds.columns]
    evals = _stats.present_metrics(seeds, m.EVAL_METRICS)
    board = _stats.leaderboard_frame(
        seeds,
        metric=metric,
        mode=mode,
        params=params,
        metrics=evals,
        without_seeds=runs.trial_status,
    )
    target, target_note = _target(target, board, metric=metric, mode=mode)
    pairs = _pairs.matched_trial_pairs(seeds)
    claim_pairs = pairs or _stats.best_trial_per_objective(board)
    reached = _targets.target_reached(seeds, runs.history, metric=metric, target=target, mode=mode)
    notes = [] if pairs else ["No matched RKDO/I-Con pairs: see the matched-settings section."]
    figures = _draw(runs, board, metric=metric, mode=mode, out_dir=out_dir, notes=notes)
    content = _markdown.ReportContent(
        title=f"RKDO vs I-Con: sweep {info.sweep_name}",
        facts=_facts(info, runs, metric=metric, mode=mode),
        metric=metric,
        mode=mode,
        target=target,
        target_note=target_note,
        params=params,
        eval_metrics=evals,
        leaderboard=board,
        matched=_pairs.matched_comparison(seeds, pairs, metrics=evals),
        matched_pairs_found=bool(pairs),
        to_target_by_objective=_targets.compute_to_target_by_objective(reached),
        to_target_by_trial=_targets.compute_to_target_by_trial(reached),
        claims=_pairs.paper_claims(seeds, claim_pairs),
        figures=figures,
        notes=notes,
    )
    _write_tables(content, out_dir)
    path = out_dir / "report.md"
    path.write_text(_markdown.render(content))
    return path


def _check_loaded(info: reading.SweepInfo, seeds: pd.DataFrame, *, metric: str) -> None:
    if seeds.empty:
        raise UsageError(f"sweep '{info.sweep_name}' (run {info.run_id}) has no seed runs yet")
    if metric not in seeds.columns:
        raise UsageError(f"--metric: no seed run of sweep '{info.sweep_name}' logged '{metric}'")


def _sampled_names(info: reading.SweepInfo, runs: reading.SweepRuns) -> list[str]:
    return list(info.parameter_specs) or sorted({n for p in runs.trial_params.values() for n in p})


def _target(
    given: float | None, board: pd.DataFrame, *, metric: str, mode: str
) -> tuple[float, str]:
    """The compute-to-target value and where it came from."""
    if given is not None:
        return given, "given with --target"
    note = "90% of the best final mean" if mode == "max" else "the best final mean plus 10%"
    return _targets.default_target(board, metric=metric, mode=mode), f"default: {note}"


def _draw(
    runs: reading.SweepRuns,
    board: pd.DataFrame,
    *,
    metric: str,
    mode: str,
    out_dir: Path,
    notes: list[str],
) -> list[_plots.Figure]:
    seeds, figures = runs.seeds, []
    values = dict(zip(board["trial_id"], board[f"{metric} mean"], strict=True))
    for made, skipped in (
        _plots.plot_sensitivity(seeds, metric=metric, out_dir=out_dir),
        _plots.plot_learning_curves(seeds, runs.history, out_dir=out_dir),
        _plots.plot_overspecialisation(seeds, out_dir=out_dir),
        _plots.plot_optuna(
            values, runs.trial_params, runs.info.parameter_specs, mode=mode, out_dir=out_dir
        ),
    ):
        figures += made
        notes += skipped
    return figures


def _facts(
    info: reading.SweepInfo, runs: reading.SweepRuns, *, metric: str, mode: str
) -> list[tuple[str, str]]:
    statuses = Counter(runs.trial_status.values())
    seeds = sorted(set(runs.seeds["seed"]))
    return [
        ("Experiment", f"{info.experiment_name} (id {info.experiment_id})"),
        ("Sweep parent run", f"{info.run_id} (space {info.space_name})"),
        ("Monitored metric", f"{metric} ({mode})"),
        (
            "Trials",
            f"{len(runs.trial_params)} ("
            + ", ".join(f"{n} {s or 'unknown'}" for s, n in sorted(statuses.items()))
            + ")",
        ),
        ("Seed runs", f"{len(runs.seeds)} over seeds {', '.join(map(str, seeds))}"),
        ("Best trial (tracked)", info.best_trial_id or "n/a"),
        ("Generated by", f"rkdo-tune {__version__}"),
    ]


def _write_tables(c: _markdown.ReportContent, out_dir: Path) -> None:
    """The tables as CSV too, at full precision, for anyone re-analysing them."""
    for name, frame in (
        ("leaderboard", c.leaderboard),
        ("matched_comparison", c.matched),
        ("compute_to_target", c.to_target_by_objective),
        ("compute_to_target_by_trial", c.to_target_by_trial),
        ("paper_claims", c.claims),
    ):
        frame.to_csv(out_dir / f"{name}.csv", index=False)
