"""Orchestration of `rkdo-tune report`: choose the sweeps, load each, compute, draw, write, log.

Reads through `rkdo_tune.tracking.reading` (MLflow stays inside the tracking
package), splits the runs by arm and stage and builds the verdict with `_verdict`,
computes the tables with `_stats`, `_pairs` and `_targets`, draws with `_plots`
and writes with `_markdown` and `_md_verdict`, then logs the folder to the sweep's
parent run. One best is chosen (`_verdict.best_of`, the leaderboard's rank 1) and
every table uses it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from rkdo_tune import metrics as m
from rkdo_tune.environment import driver_environment
from rkdo_tune.errors import UsageError
from rkdo_tune.floors import References
from rkdo_tune.inference import TieMark, tie_sentence
from rkdo_tune.report import (
    _markdown,
    _md_targets,
    _md_verdict,
    _pairs,
    _pareto,
    _plots,
    _ratio,
    _stats,
    _targets,
    _verdict,
)
from rkdo_tune.report._facts import facts
from rkdo_tune.report._families import MATCHED, TIES, family
from rkdo_tune.report._md_environment import environment_section
from rkdo_tune.report._verdict_csv import verdict_frame
from rkdo_tune.tracking import reading
from rkdo_tune.verdict import ARM_BASELINE, ARM_SEARCH, STAGE_SEARCH


@dataclass(frozen=True)
class StudyReport:
    """One sweep's report as written, and what it was computed from (the audit reads these)."""

    markdown: Path
    runs: reading.SweepRuns
    arms: _verdict.Arms
    study: _verdict.StudyVerdict
    to_target: _ratio.ToTarget
    references: References | None


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
    target_fraction: float | None = None,
) -> list[ReportResult]:
    """One report per chosen sweep (the latest of `experiment` unless `all_sweeps`)."""
    if bool(experiment) == bool(sweep):
        raise UsageError("report: give exactly one of --experiment NAME or --sweep PARENT_RUN_ID")
    resolved_uri = reading.resolve_report_uri(tracking_uri)
    client = reading.connect(resolved_uri)
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
        markdown = write_sweep_report(
            client,
            info,
            out_dir=folder,
            target=target,
            metric=metric,
            target_fraction=target_fraction,
        ).markdown
        uri = reading.log_report(client, run_id=info.run_id, directory=folder)
        for line in reading.ui_link_lines(resolved_uri, info):
            say(line)
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
    target_fraction: float | None = None,
) -> StudyReport:
    """Load one sweep, compute every table, draw every plot; returns the report.md path and
    what it was computed from.

    Each search-stage seed run gets its steps to the report's target and its censoring
    flag as MLflow metrics (`metrics.REPORT_STEPS_TO_TARGET`, `REPORT_TARGET_CENSORED`).
    """
    metric = metric or info.metric
    mode = info.mode if metric == info.metric else m.MODE_OF.get(metric, "max")
    runs = reading.load_sweep(client, info, history_keys=(m.TRAIN_LOSS, metric))
    _check_loaded(info, runs.seeds, metric=metric)
    out_dir.mkdir(parents=True, exist_ok=True)
    arms = _verdict.split_arms(runs.seeds, runs.trial_roles, baseline_tag=info.baseline_trial_id)
    params = [n for n in _sampled_names(info, runs) if n in runs.seeds.columns]
    evals = _stats.present_metrics(runs.seeds, m.EVAL_METRICS)
    board = _stats.leaderboard_frame(
        arms.search,
        metric=metric,
        mode=mode,
        params=params,
        metrics=evals,
        without_seeds=_search_trials_status(runs),
    )
    tags = {"best": info.best_trial_id if metric == info.metric else ""}
    tags |= {"baseline": info.baseline_trial_id, "confirmed": info.confirmed_trial_ids}
    evidence = reading.recorded_evidence(client, info)
    study = _verdict.study_verdict(
        board,
        arms,
        metric=metric,
        mode=mode,
        trial_params=runs.trial_params,
        names=params,
        tags=tags,
        references=evidence.references,
        primary=evidence.primary,
        margin=evidence.margin if evidence.primary else _verdict.DEFAULT_MARGIN,
        base=info.base,
    )
    given = (target, target_fraction)
    to_target = _to_target(runs, arms, board, study, given=given, metric=metric, mode=mode)
    content = _content(
        info, runs, arms, board, study, metric=metric, mode=mode, to_target=to_target, params=params
    )
    content = _draw(runs, arms, content, out_dir=out_dir)
    content = _with_pareto(content, info, study, out_dir=out_dir)
    verdict = [*content.verdict, *_md_verdict.probe_size_lines(runs.seeds)]
    content = replace(content, verdict=verdict)
    report_block = driver_environment()
    content = replace(content, environment=environment_section(evidence.environment, report_block))
    _write_tables(content, out_dir, verdict=verdict_frame(study), others=study.others)
    _write_to_target(to_target, out_dir)
    reading.log_seed_metrics(client, _targets.seed_metrics(to_target.per_seed))
    path = out_dir / "report.md"
    path.write_text(_markdown.render(content))
    return StudyReport(path, runs, arms, study, to_target, evidence.references)


def _to_target(
    runs: reading.SweepRuns,
    arms: _verdict.Arms,
    board: pd.DataFrame,
    study: _verdict.StudyVerdict,
    *,
    given: tuple[float | None, float | None],
    metric: str,
    mode: str,
) -> _ratio.ToTarget:
    """Compute-to-target on the search stage: the target from the verdict's control, at its
    full budget (the run a budget point's control is a prefix of)."""
    control = None
    if study.control is not None:
        control = (reading.budget_source(study.control.trial_id), study.control.label)
    chosen = _targets.choose_target(
        given=given[0],
        fraction=given[1],
        seeds=arms.search_stage,
        board=board,
        control=control,
        metric=metric,
        mode=mode,
    )
    return _ratio.compute_to_target(
        arms.search_stage, runs.history, target=chosen, metric=metric, mode=mode, pair=study.pair
    )


def _search_trials_status(runs: reading.SweepRuns) -> dict[str, str]:
    """The status of each search-arm, search-stage trial (those the leaderboard ranks)."""
    roles = {t: runs.trial_roles.get(t, reading.TrialRole()) for t in runs.trial_status}
    return {
        trial_id: status
        for trial_id, status in runs.trial_status.items()
        if (roles[trial_id].arm, roles[trial_id].stage) == (ARM_SEARCH, STAGE_SEARCH)
    }


def _content(
    info: reading.SweepInfo,
    runs: reading.SweepRuns,
    arms: _verdict.Arms,
    board: pd.DataFrame,
    study: _verdict.StudyVerdict,
    *,
    metric: str,
    mode: str,
    to_target: _ratio.ToTarget,
    params: list[str],
) -> _markdown.ReportContent:
    """Every table of the report, each on the search stage and under the one best."""
    stage, evals = arms.search_stage, _stats.present_metrics(runs.seeds, m.EVAL_METRICS)
    marks = _stats.tie_marks(arms.search, board, metric=metric)
    pairs = _pairs.matched_trial_pairs(stage)
    matched = _pairs.matched_comparison(stage, pairs, metrics=evals)
    families = _md_verdict.verdict_families(study)
    if len(marks) > 1:
        families.append(family(TIES, [k.comparison.p_t for k in marks if k.comparison]))
    if not matched.empty:
        families.append(family(MATCHED, matched["p_value"].tolist()))
    return _markdown.ReportContent(
        title=f"RKDO vs I-Con: sweep {info.sweep_name}",
        facts=facts(info, runs, metric=metric, mode=mode),
        metric=metric,
        mode=mode,
        params=params,
        eval_metrics=evals,
        leaderboard=_shown_leaderboard(board, marks, arms, metric=metric, mode=mode, params=params),
        matched=matched,
        matched_pairs_found=bool(pairs),
        claims=_pairs.paper_claims(stage, pairs, verdict_pair=study.pair),
        verdict=_md_verdict.verdict_section(study, metric=metric),
        to_target=_md_targets.section(to_target, metric=metric, mode=mode),
        ties=_tie_line(marks, metric=metric),
        matched_family=next((f.label() for f in families if f.name == MATCHED), ""),
        families=_md_verdict.families_section(families),
        notes=[] if pairs else ["No matched RKDO/I-Con pairs: see the matched-settings section."],
    )


def _shown_leaderboard(
    board: pd.DataFrame,
    marks: list[TieMark],
    arms: _verdict.Arms,
    *,
    metric: str,
    mode: str,
    params: list[str],
) -> pd.DataFrame:
    """The ranked search trials with their tie marks, then the baseline arm's unranked row."""
    shown = _stats.with_ties(board, marks).assign(arm=ARM_SEARCH) if not board.empty else board
    evals = _stats.present_metrics(arms.baseline_seeds, m.EVAL_METRICS)
    baseline = _stats.leaderboard_frame(
        arms.baseline_seeds, metric=metric, mode=mode, params=params, metrics=evals
    )
    if baseline.empty:
        return shown
    baseline = baseline.assign(arm=ARM_BASELINE, rank=None)
    return pd.concat([shown, baseline], ignore_index=True)


def _tie_line(marks: list[TieMark], *, metric: str) -> str:
    """The one-line count of ties; none when the best has nothing to be compared with."""
    if len(marks) < 2:
        return ""
    return f"{tie_sentence(marks)}: Holm family '{TIES}', on {metric} over the search seeds"


def _check_loaded(info: reading.SweepInfo, seeds: pd.DataFrame, *, metric: str) -> None:
    if seeds.empty:
        raise UsageError(f"sweep '{info.sweep_name}' (run {info.run_id}) has no seed runs yet")
    if metric not in seeds.columns:
        raise UsageError(f"--metric: no seed run of sweep '{info.sweep_name}' logged '{metric}'")


def _sampled_names(info: reading.SweepInfo, runs: reading.SweepRuns) -> list[str]:
    return list(info.parameter_specs) or sorted({n for p in runs.trial_params.values() for n in p})


def _draw(
    runs: reading.SweepRuns, arms: _verdict.Arms, c: _markdown.ReportContent, *, out_dir: Path
) -> _markdown.ReportContent:
    """The plots of the search stage (the baseline arm drawn as I-Con); content with them."""
    seeds, figures, notes = arms.search_stage, [], list(c.notes)
    board = c.leaderboard
    ranked = board[board["arm"] == ARM_SEARCH] if "arm" in board else board.iloc[:0]
    key = f"{c.metric} mean"
    values = dict(zip(ranked["trial_id"], ranked[key], strict=True)) if key in ranked else {}
    for made, skipped in (
        _plots.plot_sensitivity(seeds, metric=c.metric, out_dir=out_dir),
        _plots.plot_learning_curves(seeds, runs.history, out_dir=out_dir),
        _plots.plot_overspecialisation(seeds, out_dir=out_dir),
        _plots.plot_optuna(
            values, runs.trial_params, runs.info.parameter_specs, mode=c.mode, out_dir=out_dir
        ),
    ):
        figures += made
        notes += skipped
    return replace(c, figures=figures, notes=notes)


def _with_pareto(
    c: _markdown.ReportContent,
    info: reading.SweepInfo,
    study: _verdict.StudyVerdict,
    *,
    out_dir: Path,
) -> _markdown.ReportContent:
    """A search over several objectives gets its Pareto front; one objective, nothing."""
    if len(info.objectives) < 2:
        return c
    view = _pareto.pareto_view(
        c.leaderboard,
        info.objectives,
        control=study.control.trial_id if study.control else "",
        params=c.params,
        out_dir=out_dir,
    )
    figures, notes = [*c.figures, *view.figures], [*c.notes, *view.notes]
    return replace(c, pareto=view.lines, figures=figures, notes=notes)


def _write_tables(
    c: _markdown.ReportContent, out_dir: Path, *, verdict: pd.DataFrame, others: pd.DataFrame
) -> None:
    """The tables as CSV too, at full precision, for anyone re-analysing them."""
    for name, frame in (
        ("verdict", verdict),
        ("confirmed_vs_control", others),
        ("leaderboard", c.leaderboard),
        ("matched_comparison", c.matched),
        ("paper_claims", c.claims),
    ):
        frame.to_csv(out_dir / f"{name}.csv", index=False)


def _write_to_target(t: _ratio.ToTarget, out_dir: Path) -> None:
    """The compute-to-target tables as CSV, the per-seed steps and censoring included."""
    for name, frame in (
        ("compute_to_target", t.by_objective),
        ("compute_to_target_by_trial", t.by_trial),
        ("compute_to_target_ratio", t.ratios),
        ("compute_to_target_per_seed", t.per_seed),
    ):
        frame.to_csv(out_dir / f"{name}.csv", index=False)
