"""Runs a SearchSpace as a Ray Tune experiment searched by Optuna.

Ray is started here and nowhere else: embedded locally by default, or
attached to a cluster with `address`. The sweep layer knows nothing about
losses; it hands each trial's parameters to `sweep_trial`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import os
import signal
import socket
import threading
from collections.abc import Iterator, Sequence

import ray
from ray import tune
from ray.tune import ResultGrid

from rkdo_tune.data import check_available
from rkdo_tune.errors import EnvironmentFailure
from rkdo_tune.sweep._arms import (
    StudyASHA,
    StudyFIFO,
    StudyLimiter,
    StudyMedianStopping,
    StudySearch,
)
from rkdo_tune.sweep._floors import EvidenceJob
from rkdo_tune.sweep._judge import judge
from rkdo_tune.sweep._tune import make_trainable, run_config_for
from rkdo_tune.sweep.confirm import (
    build_confirmation_tuner,
    chosen_for_confirmation,
    confirmation_points,
)
from rkdo_tune.sweep.pending import PendingTimeout, PendingWatch
from rkdo_tune.sweep.placement import ClusterShape, check_cluster
from rkdo_tune.sweep.plan import ICON_STUDY_SUFFIX, SweepOptions, SweepPlan, check_storage_uri
from rkdo_tune.sweep.progress import LiveProgress, ProgressTotals
from rkdo_tune.sweep.protocol import (
    EPOCH_KEY,
    REASON_KEY,
    STATUS_KEY,
    ObserverFactory,
    SearchSpace,
    SweepOutcome,
    SweepTracker,
    TrialSummary,
    split_markers,
    with_budget_points,
)
from rkdo_tune.sweep.space import experiment_trial_count, make_sampler, sample_params


def _listening(address: str, timeout: float = 3.0) -> bool:
    """Whether anything accepts TCP connections at host:port (ray:// included)."""
    host_port = address.split("://", 1)[-1]
    host, _, port = host_port.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout):
            return True
    except (OSError, ValueError):
        return False


def check_address(address: str | None) -> None:
    """Fail in seconds, before anything starts, when nothing listens at --address."""
    if address and address != "auto" and not _listening(address):
        raise EnvironmentFailure(f"--address {address}: nothing is listening there")


def preflight(space: SearchSpace, options: SweepOptions) -> None:
    """Cheap checks that must fail before anything starts or is written."""
    check_address(options.address)
    if options.storage:
        check_storage_uri(options.storage)  # a local path was checked by plan_sweep
    if options.address is None:  # on a cluster the data lives on the workers, not here
        base = space.base_config
        check_available(base.dataset, data_dir=base.data_dir, download=base.download)


def connect_ray(address: str | None) -> None:
    """Attach to `address`, or start an embedded Ray with its dashboard off."""
    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS")  # set inside `ray job submit`
    os.environ.setdefault("RAY_DEDUP_LOGS", "1")
    # Per-epoch checkpoints of short trials trip this warning; it is expected here.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    # Tune's automatic loggers include TensorBoard's, whose import pulls torch into the
    # driver while the first trial starts; MLflow holds the metrics. run_config_for adds
    # the JSON and CSV loggers (result.json, progress.csv) back explicitly.
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    check_address(address)
    try:
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        where = f"--address {address}" if address else "local Ray"
        hint = (
            " (the cluster answered but refused this driver: export the cluster's "
            "RAY_AUTH_MODE=token and RAY_AUTH_TOKEN)"
            if address
            else ""
        )
        raise EnvironmentFailure(f"{where}: cannot connect to Ray: {first}{hint}") from None


def max_epochs(space: SearchSpace) -> int:
    """The longest a trial can run, in epochs (= reports): ASHA's max_t."""
    for parameter in space.parameters:
        if parameter.name == "epochs":
            # A conditional parameter falls back to the fixed value where its `when` fails.
            fallback = [space.base_config.epochs] if parameter.when else []
            candidates = [*parameter.choices, parameter.high, *fallback]
            return int(max(c for c in candidates if c is not None))
    return space.base_config.epochs


def _scheduler(space: SearchSpace) -> StudyASHA | StudyMedianStopping | StudyFIFO:
    settings = space.scheduler
    epochs = max_epochs(space)
    if settings.kind == "asha":
        return StudyASHA(
            time_attr=EPOCH_KEY,  # the reported epoch: evaluations set by steps add none
            max_t=max(epochs, settings.grace_period),
            grace_period=settings.grace_period,
            reduction_factor=settings.reduction_factor,
        )
    if settings.kind == "median":
        return StudyMedianStopping(
            time_attr=EPOCH_KEY,
            grace_period=settings.grace_period,
            min_samples_required=2,
        )
    return StudyFIFO()


def _searcher(space: SearchSpace, plan: SweepPlan, options: SweepOptions) -> StudyLimiter:
    storage = None
    if options.optuna_storage:
        import optuna

        storage = optuna.storages.RDBStorage(url=options.optuna_storage)
    multi = len(space.objectives) > 1
    searcher = StudySearch(
        baseline=space.fixed_arm,
        space=functools.partial(sample_params, space),  # picklable: searcher state is saved
        # Define-by-run: TuneConfig's metric does not reach the searcher. Several objectives
        # go as lists (Optuna's multi-objective study); TuneConfig keeps the primary (FIFO).
        metric=[o.name for o in space.objectives] if multi else space.metric,
        mode=[o.mode for o in space.objectives] if multi else space.mode,
        points_to_evaluate=[dict(p) for p in space.search.points_to_evaluate] or None,
        sampler=make_sampler(space),
        study_name=plan.name,
        storage=storage,
        budget=experiment_trial_count(space),  # never more, even from a generator restored behind
    )
    return StudyLimiter(searcher, max_concurrent=space.search.max_concurrent)


def check_resumable(plan: SweepPlan) -> None:
    """--resume needs the Ray experiment state of an earlier sweep with this name."""
    if not tune.Tuner.can_restore(plan.experiment_path):
        raise EnvironmentFailure(f"--resume: no sweep to resume at {plan.experiment_path}")


def count_unfinished(experiment_path: str) -> int:
    """Trials the saved experiment state still has to run: more than 0 after Ctrl-C.

    The ResultGrid cannot tell: after an interrupt its in-memory trials read TERMINATED.
    """
    trials = tune.ExperimentAnalysis(experiment_path).trials
    return sum(trial.status not in ("TERMINATED", "ERROR") for trial in trials)


def build_tuner(
    space: SearchSpace,
    plan: SweepPlan,
    options: SweepOptions,
    *,
    observer_factory: ObserverFactory | None = None,
    callbacks: Sequence[tune.Callback] = (),
) -> tune.Tuner:
    """A new Tuner, or the restored one of an earlier sweep with the same name."""
    trainable = make_trainable(space, observer_factory)
    if options.resume:
        check_resumable(plan)
        return tune.Tuner.restore(
            plan.experiment_path, trainable, resume_unfinished=True, resume_errored=True
        )
    search, scheduler = _searcher(space, plan, options), _scheduler(space)
    scheduler.study = search  # restored trials reach the searcher first (see _arms)
    return tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            search_alg=search,
            scheduler=scheduler,
            num_samples=experiment_trial_count(space),
            metric=space.metric,
            mode=space.mode,
            # One worker process serves trial after trial: a fresh one costs seconds of
            # imports and store set-up per trial. `sweep_trial` leaves no state behind.
            reuse_actors=True,
        ),
        run_config=run_config_for(plan.name, plan, options, callbacks),
    )


def error_reason(error: BaseException) -> str:
    """The trial's own exception in one line, not Ray's wrapper ("ray::ImplicitFunc...")."""
    cause = getattr(error, "cause", None) or error.__cause__
    if cause is not None and cause is not error:
        return error_reason(cause)
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return f"{type(error).__name__}: {lines[-1] if lines else ''}".rstrip(": ")


def _as_float(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _summaries(results: ResultGrid, space: SearchSpace) -> tuple[list[TrialSummary], int]:
    summaries, errors = [], 0
    for result in results:
        metrics = dict(result.metrics or {})
        if result.error is not None:
            errors += 1
        value = metrics.get(space.metric, math.nan)
        role, params = split_markers(result.config or {})
        summaries.append(
            TrialSummary(
                trial_id=str(metrics.get("trial_id", result.path.rsplit("/", 1)[-1])),
                params=params,
                role=role,
                value=_as_float(value),
                std=_as_float(metrics.get(f"{space.metric}_std")),
                status="error" if result.error is not None else metrics.get(STATUS_KEY, "?"),
                reason=error_reason(result.error)
                if result.error is not None
                else metrics.get(REASON_KEY, ""),
                epochs=int(metrics.get(EPOCH_KEY, 0) or 0),
                metrics=metrics,
            )
        )
    expanded = [
        row
        for s in summaries
        for row in with_budget_points(s, metric=space.metric, epochs=space.base_config.epochs)
    ]
    return expanded, errors


@contextlib.contextmanager
def _sigterm_as_sigint() -> Iterator[None]:
    """Let SIGTERM stop a sweep as gracefully as Ctrl-C (Tune saves state on SIGINT)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, lambda *_: os.kill(os.getpid(), signal.SIGINT))
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _callbacks(
    space: SearchSpace, options: SweepOptions, cluster: ClusterShape
) -> list[tune.Callback]:
    """Live progress; where the cluster may grow, also the watch of trials waiting for a node."""
    totals = ProgressTotals.of(space, epochs=max_epochs(space))
    callbacks: list[tune.Callback] = [
        LiveProgress(metric=space.metric, mode=space.mode, totals=totals)
    ]
    if cluster.autoscaler:
        timeout = options.pending_timeout_s
        callbacks.append(PendingWatch(request=space.resources, timeout_s=timeout))
    return callbacks


def run_sweep(
    space: SearchSpace,
    plan: SweepPlan,
    options: SweepOptions,
    *,
    tracker: SweepTracker | None = None,
) -> tuple[SweepOutcome, list[str]]:
    """Start (or attach to) Ray, check a trial fits, start tracking, run and summarise.

    Returns the outcome and the tracker's lines for the summary. A tracking server
    is checked for reachability before this is called (`app.launch_sweep`).
    """
    tracker = tracker or SweepTracker()
    preflight(space, options)  # before tracking writes anything
    if options.resume:
        check_resumable(plan)  # before tracking reattaches to the sweep's parent run
    connect_ray(options.address)
    # After Ray connects, before tracking creates a run: a trial no node can hold is one line.
    embedded = not (options.address or os.environ.get("RAY_ADDRESS"))
    cluster = check_cluster(space.resources, space.search.max_concurrent, embedded=embedded)
    tracker.start(space=space, plan=plan, resume=options.resume)
    evidence = EvidenceJob(space, tracker)  # floors and environment, beside the trials
    try:
        hooks = _Hooks(tracker.observer_factory(), _callbacks(space, options, cluster))
        tuner = build_tuner(
            space, plan, options, observer_factory=hooks.factory, callbacks=hooks.callbacks
        )
        with _sigterm_as_sigint():
            results = tuner.fit()
        summaries, errors = _summaries(results, space)
        outcome = SweepOutcome(
            plan=plan,
            metric=space.metric,
            mode=space.mode,
            trials=tuple(summaries),
            errors=errors,
            unfinished=count_unfinished(plan.experiment_path),
        )
        if space.baseline_search and not outcome.unfinished:
            outcome = _tune_baseline(space, plan, options, outcome, hooks)
        if space.confirm is not None and not outcome.unfinished and outcome.ranked():
            outcome = _confirm(space, plan, options, outcome, hooks)
    except BaseException as exc:
        evidence.cancel()
        tracker.finish(SweepOutcome(plan, space.metric, space.mode, (), 0), error=exc)
        if isinstance(getattr(exc, "cause", None), PendingTimeout):  # raised in a ray:// Tuner
            raise exc.cause from None
        raise
    outcome = judge(evidence.attach(outcome), space)
    return outcome, tracker.finish(outcome)


@dataclasses.dataclass(frozen=True)
class _Hooks:
    """What every Tune experiment of a sweep runs its trials with."""

    factory: ObserverFactory | None
    callbacks: Sequence[tune.Callback]


def _tune_baseline(
    space: SearchSpace, plan: SweepPlan, options: SweepOptions, outcome: SweepOutcome, hooks: _Hooks
) -> SweepOutcome:
    """Run (or resume) I-Con's own study, `<name>-icon`, and add its trials to the search's.

    The same sampler, budget, scheduler and seeds as RKDO's, in a Tune experiment and an
    Optuna study of their own; its fixed arm is I-Con's default (the baseline arm).
    """
    icon = space.baseline_study()
    assert icon is not None and icon.baseline is not None
    icon_plan = dataclasses.replace(
        plan, name=f"{plan.name}{ICON_STUDY_SUFFIX}", experiment_path=plan.icon_experiment_path
    )
    restore = options.resume and tune.Tuner.can_restore(icon_plan.experiment_path)
    icon_options = dataclasses.replace(options, resume=restore)
    tuner = build_tuner(
        icon, icon_plan, icon_options, observer_factory=hooks.factory, callbacks=hooks.callbacks
    )
    with _sigterm_as_sigint():
        results = tuner.fit()
    summaries, errors = _summaries(results, icon)
    # Each I-Con trial names the baseline's keys too: a confirmation re-runs it on RKDO's base.
    named = [dataclasses.replace(t, params={**icon.baseline, **t.params}) for t in summaries]
    return dataclasses.replace(
        outcome,
        trials=(*outcome.trials, *named),
        errors=outcome.errors + errors,
        unfinished=count_unfinished(icon_plan.experiment_path),
    )


def _confirm(
    space: SearchSpace, plan: SweepPlan, options: SweepOptions, outcome: SweepOutcome, hooks: _Hooks
) -> SweepOutcome:
    """Run (or resume) the confirmation stage and add its trials to the outcome."""
    assert space.confirm is not None
    points = confirmation_points(chosen_for_confirmation(outcome, space.confirm.top))
    tuner = build_confirmation_tuner(
        space, plan, options, points, observer_factory=hooks.factory, callbacks=hooks.callbacks
    )
    with _sigterm_as_sigint():
        results = tuner.fit()
    summaries, errors = _summaries(results, space)
    return dataclasses.replace(
        outcome,
        confirmation=tuple(summaries),
        errors=outcome.errors + errors,
        unfinished=count_unfinished(plan.confirm_experiment_path),
    )
