"""`rkdo-tune audit`: run each study as a nested sweep, report each, then decide every claim.

Studies run one after the other in one process, so Ray starts once. An interrupted
audit continues with `--resume`: a study whose sweep run is FINISHED (search and
confirmation complete) is not run again; an unfinished one is resumed from its Tune
state; the rest start. The claims are decided only when every study is done.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from rkdo_tune.audit import _markdown
from rkdo_tune.audit._claims import ClaimEvidence, ClaimRow, decide_all
from rkdo_tune.audit._evidence import budget_claims, context, shared_control
from rkdo_tune.audit._options import AuditOptions
from rkdo_tune.audit._plan import Calibration, StudyPlan, calibrate, plan_lines, plan_study
from rkdo_tune.audit._sensitivity import knob_claim, schedule_claim
from rkdo_tune.audit._stopping import early_stop_claim
from rkdo_tune.audit._studies import (
    CONTROL_STUDY,
    confirm_seeds,
    load_studies,
    search_seeds,
    study_names,
)
from rkdo_tune.errors import UsageError
from rkdo_tune.report import StudyReport
from rkdo_tune.sweep.plan import SweepOptions
from rkdo_tune.tracking import layout as lay

if TYPE_CHECKING:
    from rkdo_tune.tracking import AuditTracker, StudyRun


@dataclass(frozen=True)
class AuditResult:
    name: str
    markdown: Path | None
    rows: tuple[ClaimRow, ...]
    lines: tuple[str, ...]
    interrupted: bool = False


def _name(options: AuditOptions) -> str:
    if options.name:
        return options.name
    return f"audit-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"


def plan_audit(
    options: AuditOptions, *, name: str, calibration: Calibration | None = None
) -> list[StudyPlan]:
    """Every study loaded, harmonised and planned (names, paths, counts); nothing started."""
    from rkdo_tune.sweep.plan import plan_sweep

    names = study_names(name)
    plans = []
    for study, space in load_studies(options.settings):
        plan = plan_sweep(space, _sweep_options(options, names[study.key], resume=False))
        plans.append(plan_study(study, space, plan, calibration))
    return plans


def _sweep_options(options: AuditOptions, name: str, *, resume: bool) -> SweepOptions:
    return SweepOptions(
        name=name,
        storage=options.storage,
        address=options.address,
        resume=resume,
        tracking_uri=options.tracking_uri,
        experiment=options.experiment,
    )


def dry_run(options: AuditOptions) -> list[str]:
    """The plan, with a time estimate from a short calibration run of the base config."""
    name = options.name or "audit-TIMESTAMP"
    plans = plan_audit(options, name=name)  # every input checked before the calibration
    calibration = calibrate(plans[0].space.base_config)
    return plan_lines(name, plan_audit(options, name=name, calibration=calibration), calibration)


def run_audit(options: AuditOptions, *, say: Callable[[str], None] = print) -> AuditResult:
    """Run (or continue) every study, then report each and decide the claims."""
    from rkdo_tune.tracking import AuditTracker, resolve_tracking_uri

    uri = resolve_tracking_uri(options.tracking_uri, environ=os.environ, cwd=Path.cwd())
    options = replace(options, tracking_uri=uri)
    plan_audit(options, name=options.name or "audit")  # every input checked, nothing started
    tracker = AuditTracker(tracking_uri=uri, experiment=options.experiment)
    name = options.name or (tracker.latest_unfinished() if options.resume else None)
    if options.resume and not name:
        raise UsageError(f"--resume: experiment {options.experiment} has no unfinished audit")
    name = name or _name(options)
    plans = plan_audit(options, name=name)
    tracker.start(name=name, resume=options.resume, params=_params(options, plans))
    for plan in plans:
        try:
            finished = _run_study(plan, options, tracker, say=say)
        except BaseException:  # a study that failed: the audit run says so, then the error
            tracker.finish(status="FAILED", tags={}, metrics={}, directory=None)
            raise
        if not finished:
            tracker.finish(status="KILLED", tags={}, metrics={}, directory=None)
            say(f"audit {name} interrupted; continue it with --resume --name {name}")
            return AuditResult(name, None, (), tuple(tracker.lines()), interrupted=True)
    out = options.out or Path(f"audit-{name}")
    recorded = tracker.studies()
    reports = _report_studies(tracker, recorded, plans, out=out)
    rows, adjusted = decide_all(claims_of(reports))
    facts = _facts(name, options, recorded, plans)
    path = _markdown.write(out, facts, rows, adjusted)
    tracker.finish(status="FINISHED", tags=_tags(rows), metrics=_metrics(rows), directory=out)
    return AuditResult(name, path, tuple(rows), tuple(tracker.lines()))


def _run_study(
    plan: StudyPlan, options: AuditOptions, tracker: AuditTracker, *, say: Callable[[str], None]
) -> bool:
    """Run one study unless it is done; False when it was interrupted."""
    from ray import tune

    from rkdo_tune.app import launch_sweep

    recorded = tracker.studies().get(plan.study.key)
    if recorded is not None and recorded.done(needs_confirmation=plan.space.confirm is not None):
        say(f"study {plan.study.key}: done in sweep run {recorded.run_id}, not run again")
        return True
    resume = recorded is not None and tune.Tuner.can_restore(plan.plan.experiment_path)
    sweep = _sweep_options(options, plan.plan.name, resume=resume)
    say(f"study {plan.study.key}: {'resuming' if resume else 'running'} sweep {plan.plan.name}")
    tags = {lay.TAG_AUDIT_STUDY: plan.study.key, lay.TAG_AUDIT_NAME: tracker.name}
    try:
        outcome, _ = launch_sweep(
            plan.space, plan.plan, sweep, nest_under=tracker.run_id, tags=tags
        )
    except KeyboardInterrupt:
        return False
    return not outcome.unfinished


def _report_studies(
    tracker: AuditTracker,
    recorded: Mapping[str, StudyRun],
    plans: Sequence[StudyPlan],
    *,
    out: Path,
) -> dict[str, StudyReport]:
    """Each study's report, written under out/studies/<study> and logged to its sweep run."""
    from rkdo_tune.report import write_sweep_report
    from rkdo_tune.tracking import reading

    client = reading.connect(tracker.tracking_uri)
    reports = {}
    for plan in plans:
        key = plan.study.key
        info = reading.find_sweeps(client, experiment=None, sweep=recorded[key].run_id)[0]
        folder = out / "studies" / key
        reports[key] = write_sweep_report(client, info, out_dir=folder, target=None, metric=None)
        reading.log_report(client, run_id=info.run_id, directory=folder)
    return reports


def claims_of(reports: Mapping[str, StudyReport]) -> list[ClaimEvidence]:
    """The seven claims from the four studies' reports, in the paper's order."""
    control = shared_control(reports[CONTROL_STUDY])
    claims = [
        *budget_claims(reports["budgets"], study="budgets"),
        knob_claim(reports["alpha"], control, number=3, knob="alpha", study="alpha"),
        knob_claim(reports["depth"], control, number=4, knob="depth", study="depth"),
        schedule_claim(reports["adaptive"], control, study="adaptive"),
        early_stop_claim(list(reports.values()), context=context(reports[CONTROL_STUDY])),
    ]
    return sorted(claims, key=lambda c: c.number)


def _facts(
    name: str, options: AuditOptions, recorded: Mapping[str, StudyRun], plans: Sequence[StudyPlan]
) -> _markdown.AuditFacts:
    base = plans[0].space.base_config
    studies = tuple((p.study.key, p.plan.name, recorded[p.study.key].run_id) for p in plans)
    n = options.settings.seeds
    return _markdown.AuditFacts(
        name=name,
        dataset=base.dataset,
        model=base.model,
        seeds=search_seeds(n),
        confirm_seeds=confirm_seeds(n),
        studies=studies,
        date=time.strftime("%Y-%m-%d %H:%M %Z"),
    )


def _params(options: AuditOptions, plans: Sequence[StudyPlan]) -> dict[str, object]:
    s = options.settings
    params: dict[str, object] = {
        "seeds": ",".join(map(str, search_seeds(s.seeds))),
        "confirm_seeds": ",".join(map(str, confirm_seeds(s.seeds))),
        "dataset": plans[0].space.base_config.dataset,
        "model": plans[0].space.base_config.model,
        "steps_per_epoch": s.steps_per_epoch,
        "studies": ",".join(p.study.key for p in plans),
    }
    return {k: v for k, v in params.items() if v is not None}


def _tags(rows: Sequence[ClaimRow]) -> dict[str, str]:
    return {f"rkdo.claim{r.evidence.number}": f"{r.verdict}: {r.why}" for r in rows}


def _metrics(rows: Sequence[ClaimRow]) -> dict[str, float]:
    values = {}
    for r in rows:
        values[f"claim{r.evidence.number}/p_audit_holm"] = r.p_audit
        values[f"claim{r.evidence.number}/p_study_holm"] = r.p_study
        values[f"claim{r.evidence.number}/supported"] = float(r.verdict == "supported")
    return values
