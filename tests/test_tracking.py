"""MLflow tracking of sweeps, against a real `mlflow server` and real training runs.

The trial-level tests drive real trainers through the real observer (no Ray
session: the loop that Ray runs is replayed here); the slow tests run the
whole `rkdo-tune sweep` as a subprocess and read the result through MlflowClient.
"""

from __future__ import annotations

import json
import math
import pickle
import time
import uuid
from pathlib import Path

import pytest
from _mlflow_server import free_port
from _support import run_cli
from mlflow import MlflowClient
from mlflow.entities import ViewType

from rkdo_tune import metrics as m
from rkdo_tune.config import FIELDS
from rkdo_tune.errors import EnvironmentFailure, UsageError
from rkdo_tune.evaluation import last_only_metrics
from rkdo_tune.sweep.plan import SweepOptions, plan_sweep
from rkdo_tune.sweep.protocol import SweepOutcome, TrialSummary
from rkdo_tune.sweep.space import load_space, trial_config
from rkdo_tune.sweep.trial import REASON_KEY, STATUS_KEY, aggregate, build_trainers
from rkdo_tune.tracking import (
    MlflowSweepTracker,
    check_reachable,
    redact_uri,
    resolve_tracking_uri,
    resolved_space,
    scrub,
    space_params,
)
from rkdo_tune.tracking import layout as lay

STEP_KEYS = (
    m.TRAIN_LOSS,
    m.TRAIN_ALPHA,
    m.TRAIN_TAU,
    m.TRAIN_TENSION,
    m.TRAIN_SAMPLES_PER_S,
    m.TRAIN_LOSS_SLOPE,
    m.TRAIN_LOG_LOSS_SLOPE,
)


# ----- URIs and secrets (no server) ---------------------------------------------------------


def test_default_uri_is_an_absolute_sqlite_file_in_the_working_directory(tmp_path):
    uri = resolve_tracking_uri(None, environ={}, cwd=tmp_path)
    assert uri == f"sqlite:///{tmp_path.resolve()}/mlflow.db"


def test_flag_beats_environment_and_relative_sqlite_becomes_absolute(tmp_path):
    env = {"MLFLOW_TRACKING_URI": "http://env-host:5000"}
    assert resolve_tracking_uri(None, environ=env, cwd=tmp_path) == "http://env-host:5000"
    flagged = resolve_tracking_uri("sqlite:///sub/t.db", environ=env, cwd=tmp_path)
    assert flagged == f"sqlite:///{tmp_path.resolve()}/sub/t.db"
    absolute = resolve_tracking_uri("sqlite:////abs/x.db?timeout=5", environ={}, cwd=tmp_path)
    assert absolute == "sqlite:////abs/x.db?timeout=5"


@pytest.mark.parametrize("uri", ["./mlruns", "file:///tmp/mlruns", "sqlite://"])
def test_unshareable_uris_are_one_line_usage_errors(tmp_path, uri):
    with pytest.raises(UsageError, match="--tracking-uri") as caught:
        resolve_tracking_uri(uri, environ={}, cwd=tmp_path)
    assert "\n" not in str(caught.value)


def test_credentials_and_secret_values_are_masked():
    assert redact_uri("https://me:pa55@host:5000/x") == "https://***@host:5000/x"
    assert redact_uri("sqlite:////a/b.db") == "sqlite:////a/b.db"
    env = {"MLFLOW_TRACKING_TOKEN": "tok-123456", "MLFLOW_TRACKING_PASSWORD": "pw-98765"}
    text = "uri=https://u:pw-98765@h token tok-123456 end"
    assert scrub(text, environ=env) == "uri=https://***@h token *** end"


def test_unreachable_server_fails_within_seconds_with_one_line():
    uri = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(EnvironmentFailure) as caught:
        check_reachable(uri)
    assert time.monotonic() - started < 6
    message = str(caught.value)
    assert uri in message and "\n" not in message


def test_missing_sqlite_directory_is_an_environment_failure(tmp_path):
    with pytest.raises(EnvironmentFailure, match="does not exist"):
        check_reachable(f"sqlite:///{tmp_path}/nowhere/mlflow.db")


def test_resolved_space_loads_again_and_flattens_to_params(tmp_path):
    import yaml

    space = load_space("smoke.yaml", overrides=["base.epochs=3"])
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(resolved_space(space), sort_keys=False))
    again = load_space(path)
    assert (again.base, again.parameters, again.search, again.seeds) == (
        space.base,
        space.parameters,
        space.search,
        space.seeds,
    )
    params = space_params(space)
    # The fixed settings once, under their plain names; the searched one only in its spec.
    assert params["epochs"] == 3 and params["dataset"] == "digits"
    assert not {"objective", "seed"} & set(params)
    assert not any(key.startswith(("base.", "config.")) for key in params)
    assert params["repeats.seeds"] == "42"
    assert params["search.algorithm"] == "grid"
    assert json.loads(json.dumps(params["parameters.objective"])) == {
        "type": "categorical",
        "choices": ["rkdo", "icon"],
        lay.SPEC_FALLBACK: space.base_config.objective,
    }
    assert params["metric"] == m.EVAL_LINEAR_ACC and params["mode"] == "max"


# ----- trial and seed runs against a real server, real trainers ---------------------------


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _tracker(server: str, tmp_path: Path, *, name: str, experiment: str, overrides=()):
    space = load_space("smoke.yaml", overrides=list(overrides))
    plan = plan_sweep(space, SweepOptions(name=name, storage=str(tmp_path / "results")))
    return MlflowSweepTracker(tracking_uri=server, experiment=experiment), space, plan


def _open_trial(factory, space, params, *, trial_id: str):
    observer = pickle.loads(pickle.dumps(factory))()  # as Ray ships it to a worker
    configs = [trial_config(space, params, seed=s) for s in space.seeds]
    callbacks = observer.seed_callbacks(
        params=params, configs=configs, trial_id=trial_id, node_id="node-test"
    )
    return observer, build_trainers(configs, callbacks)


def _train(observer, trainers, *, epochs: int | None = None, stopped_at_the_end=False):
    """What sweep_trial does between Ray reports; returns the final report, or None if cut.

    stopped_at_the_end: Ray stops the trial inside its final report (ASHA at max_t),
    so on_finish sees SystemExit instead of the report.
    """
    for trainer in trainers:
        trainer.start()
    for _ in range(epochs or 10**6):
        if not any([trainer.run_epoch() for trainer in trainers]):
            report = aggregate(trainers, [trainer.finish() for trainer in trainers])
            observer.on_report(report)
            if stopped_at_the_end:
                observer.on_finish(report=None, error=SystemExit(0))
            else:
                observer.on_finish(report=report, error=None)
            return report
        observer.on_report(aggregate(trainers))
    return None


def _summary(trial_id: str, params: dict, report: dict, *, status: str | None = None):
    return TrialSummary(
        trial_id=trial_id,
        params=params,
        value=report[m.EVAL_LINEAR_ACC],
        std=report[f"{m.EVAL_LINEAR_ACC}_std"],
        status=status or report[STATUS_KEY],
        reason=report.get(REASON_KEY, ""),
        epochs=report["epoch"],
        metrics=report,
    )


def _runs(client: MlflowClient, experiment_id: str, **tags: str):
    query = " and ".join(f"tags.`{k.replace('__', '.')}` = '{v}'" for k, v in tags.items())
    return client.search_runs([experiment_id], filter_string=query, max_results=500)


def _steps(client: MlflowClient, run_id: str, key: str) -> list[int]:
    return sorted(point.step for point in client.get_metric_history(run_id, key))


def test_restarted_trial_continues_its_killed_runs_and_the_sweep_records_the_best(
    mlflow_server, tmp_path
):
    tracker, space, plan = _tracker(
        mlflow_server, tmp_path, name=_unique("restart"), experiment=_unique("exp")
    )
    tracker.start(space=space, plan=plan, resume=False)
    factory = tracker.observer_factory()
    params = {"objective": "rkdo"}
    # First attempt: one epoch, a checkpoint, then the worker dies (nothing ends its runs).
    first, trainers = _open_trial(factory, space, params, trial_id="trial_a")
    assert _train(first, trainers, epochs=1) is None
    for trainer in trainers:
        trainer.save_checkpoint(tmp_path / "ckpt" / f"seed_{trainer.config.seed}")
    # Ray restarts the trial from that checkpoint.
    second, trainers = _open_trial(factory, space, params, trial_id="trial_a")
    for trainer in trainers:
        assert trainer.restore(tmp_path / "ckpt" / f"seed_{trainer.config.seed}")
    report = _train(second, trainers, stopped_at_the_end=True)
    lines = tracker.finish(
        SweepOutcome(plan, space.metric, space.mode, (_summary("trial_a", params, report),), 0)
    )

    client = MlflowClient(mlflow_server)
    eid = tracker.experiment_id
    trial_runs = _runs(client, eid, rkdo__role="trial", trial_id="trial_a")
    by_status = {r.info.status: r for r in trial_runs}
    assert sorted(by_status) == ["FINISHED", "KILLED"] and len(trial_runs) == 2
    old, new = by_status["KILLED"], by_status["FINISHED"]
    assert new.data.tags[lay.TAG_CONTINUES] == old.info.run_id
    assert new.data.tags[lay.TAG_STATUS] == "completed"
    assert old.data.tags[lay.TAG_SUPERSEDED_BY] == new.info.run_id
    assert old.data.tags[lay.TAG_STATUS] == lay.STATUS_STOPPED
    old_seed = _runs(client, eid, mlflow__parentRunId=old.info.run_id)[0]
    new_seed = _runs(client, eid, mlflow__parentRunId=new.info.run_id)[0]
    assert old_seed.info.status == "KILLED"
    assert new_seed.info.status == "FINISHED"
    assert new_seed.data.tags[lay.TAG_CONTINUES] == old_seed.info.run_id
    assert old_seed.data.tags[lay.TAG_SUPERSEDED_BY] == new_seed.info.run_id
    # The continuation holds the whole curve: steps before the restart are sent too.
    assert _steps(client, new_seed.info.run_id, m.TRAIN_LOSS) == list(range(1, 11))
    assert _steps(client, new_seed.info.run_id, m.EVAL_LINEAR_ACC) == [5, 10]
    assert _steps(client, old_seed.info.run_id, m.TRAIN_LOSS) == [1, 2, 3, 4, 5]

    parent = client.get_run(tracker.parent_run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.tags[lay.TAG_BEST_TRIAL_ID] == "trial_a"
    assert parent.data.tags[lay.TAG_BEST_TRIAL_RUN_ID] == new.info.run_id
    best = parent.data.metrics[f"{lay.BEST_METRIC_PREFIX}{m.EVAL_LINEAR_ACC}"]
    assert best == pytest.approx(report[m.EVAL_LINEAR_ACC])
    board = json.loads(
        Path(
            client.download_artifacts(parent.info.run_id, lay.ARTIFACT_LEADERBOARD, tmp_path)
        ).read_text()
    )
    assert [(row["rank"], row["trial_id"], row["run_id"]) for row in board] == [
        (1, "trial_a", new.info.run_id)
    ]
    assert any(line.startswith(f"MLflow UI: {mlflow_server}/#/experiments/{eid}") for line in lines)


def test_a_trial_that_raises_ends_failed_with_the_first_line_of_its_error(mlflow_server, tmp_path):
    tracker, space, plan = _tracker(
        mlflow_server, tmp_path, name=_unique("fail"), experiment=_unique("exp")
    )
    tracker.start(space=space, plan=plan, resume=False)
    observer, _ = _open_trial(
        tracker.observer_factory(), space, {"objective": "icon"}, trial_id="t"
    )
    observer.on_finish(report=None, error=RuntimeError("boom\nsecond line"))

    client = MlflowClient(mlflow_server)
    trial = _runs(client, tracker.experiment_id, rkdo__role="trial")[0]
    seed = _runs(client, tracker.experiment_id, rkdo__role="seed")[0]
    assert trial.info.status == "FAILED" and seed.info.status == "FAILED"
    assert trial.data.tags[lay.TAG_REASON] == "RuntimeError: boom"
    assert trial.data.tags[lay.TAG_STATUS] == lay.STATUS_FAILED
    assert trial.data.metrics[lay.METRIC_FAILED] == 1.0


def test_a_diverged_trial_ends_finished_with_status_diverged_and_its_reason(
    mlflow_server, tmp_path
):
    tracker, space, plan = _tracker(
        mlflow_server,
        tmp_path,
        name=_unique("diverge"),
        experiment=_unique("exp"),
        overrides=["base.lr=1.0e12"],  # NaN loss at step 2
    )
    tracker.start(space=space, plan=plan, resume=False)
    observer, trainers = _open_trial(
        tracker.observer_factory(), space, {"objective": "rkdo"}, trial_id="d"
    )
    report = _train(observer, trainers)
    assert report[STATUS_KEY] == "diverged"

    client = MlflowClient(mlflow_server)
    for role, prefix in (("trial", lay.MEAN_PREFIX), ("seed", "")):
        run = _runs(client, tracker.experiment_id, rkdo__role=role)[0]
        assert run.info.status == "FINISHED"
        assert run.data.tags[lay.TAG_STATUS] == "diverged"
        assert "non-finite loss" in run.data.tags[lay.TAG_REASON]
        assert run.data.metrics[f"{prefix}{m.DIAG_DIVERGED}"] == 1.0
    trial = _runs(client, tracker.experiment_id, rkdo__role="trial")[0]
    mean = trial.data.metrics[f"{lay.MEAN_PREFIX}{m.EVAL_LINEAR_ACC}"]
    assert math.isnan(mean)  # a diverged seed spoils the mean


@pytest.mark.parametrize(("unfinished", "run_status"), [(0, "FINISHED"), (1, "KILLED")])
def test_runs_a_killed_trial_left_open_are_closed_by_the_driver(
    mlflow_server, tmp_path, unfinished, run_status
):
    """ASHA kills a trial's actor (unfinished=0): FINISHED/stopped; an interrupt: KILLED."""
    tracker, space, plan = _tracker(
        mlflow_server, tmp_path, name=_unique("stop"), experiment=_unique("exp")
    )
    tracker.start(space=space, plan=plan, resume=False)
    params = {"objective": "rkdo"}
    observer, trainers = _open_trial(tracker.observer_factory(), space, params, trial_id="t")
    report = aggregate(trainers)  # Ray stops it before any evaluation
    observer.on_report(report)
    observer.on_finish(report=None, error=SystemExit(0))  # leaves the runs to the driver
    outcome = SweepOutcome(
        plan, space.metric, space.mode, (_summary("t", params, report),), 0, unfinished
    )
    tracker.finish(outcome)

    client = MlflowClient(mlflow_server)
    parent = client.get_run(tracker.parent_run_id)
    assert parent.info.status == ("FINISHED" if unfinished == 0 else "KILLED")
    for role in ("trial", "seed"):
        run = _runs(client, tracker.experiment_id, rkdo__role=role)[0]
        assert run.info.status == run_status
        assert run.data.tags[lay.TAG_STATUS] == lay.STATUS_STOPPED


def test_resume_reattaches_the_one_parent_run_without_changing_params(mlflow_server, tmp_path):
    name, experiment = _unique("resume"), _unique("exp")
    first, space, plan = _tracker(mlflow_server, tmp_path, name=name, experiment=experiment)
    first.start(space=space, plan=plan, resume=False)
    _open_trial(first.observer_factory(), space, {"objective": "rkdo"}, trial_id="t")
    first.finish(SweepOutcome(plan, space.metric, space.mode, (), 0), error=KeyboardInterrupt())
    client = MlflowClient(mlflow_server)
    assert client.get_run(first.parent_run_id).info.status == "KILLED"

    again, space, plan = _tracker(mlflow_server, tmp_path, name=name, experiment=experiment)
    with pytest.raises(UsageError, match=f"--name {name}.*--resume"):
        again.start(space=space, plan=plan, resume=False)
    # A changed override on resume must not trip "Changing param values is not allowed".
    resumed, space, plan = _tracker(
        mlflow_server, tmp_path, name=name, experiment=experiment, overrides=["base.epochs=3"]
    )
    resumed.start(space=space, plan=plan, resume=True)
    assert resumed.parent_run_id == first.parent_run_id
    parent = client.get_run(first.parent_run_id)
    assert parent.info.status == "RUNNING"
    assert parent.data.params["epochs"] == "2"
    parents = _runs(client, resumed.experiment_id, rkdo__role="sweep")
    assert [p.info.run_id for p in parents] == [first.parent_run_id]


def test_a_parent_without_trials_is_replaced_not_duplicated(mlflow_server, tmp_path):
    name, experiment = _unique("empty"), _unique("exp")
    first, space, plan = _tracker(mlflow_server, tmp_path, name=name, experiment=experiment)
    first.start(space=space, plan=plan, resume=False)
    first.finish(SweepOutcome(plan, space.metric, space.mode, (), 0), error=RuntimeError("x"))
    second, space, plan = _tracker(mlflow_server, tmp_path, name=name, experiment=experiment)
    second.start(space=space, plan=plan, resume=False)
    client = MlflowClient(mlflow_server)
    parents = _runs(client, second.experiment_id, rkdo__role="sweep")
    assert [p.info.run_id for p in parents] == [second.parent_run_id]
    assert second.parent_run_id != first.parent_run_id


@pytest.mark.parametrize(
    ("protocol", "kmeans"),
    [("paper", ("1", "labels")), ("paper_latest", ("1", "labels")), ("full", ("10", "classes"))],
)
def test_runs_log_the_protocols_kmeans_settings_and_version(
    mlflow_server, tmp_path, protocol, kmeans
):
    tracker, space, plan = _tracker(
        mlflow_server,
        tmp_path,
        name=_unique("kmeans"),
        experiment=_unique("exp"),
        overrides=[f"base.protocol={protocol}"],
    )
    tracker.start(space=space, plan=plan, resume=False)
    observer, _ = _open_trial(
        tracker.observer_factory(), space, {"objective": "rkdo"}, trial_id="t"
    )
    observer.on_finish(report=None, error=RuntimeError("only the params matter here"))

    client = MlflowClient(mlflow_server)
    seed = _runs(client, tracker.experiment_id, rkdo__role="seed")[0]
    trial = _runs(client, tracker.experiment_id, rkdo__role="trial")[0]
    keys = ("kmeans_n_init", "kmeans_k")
    parent = client.get_run(tracker.parent_run_id)
    # Fixed settings and the version are the sweep run's, and only its (one key per thing).
    assert tuple(parent.data.params[key] for key in keys) == kmeans
    assert parent.data.tags[lay.TAG_PROTOCOL_VERSION] == "2"
    for run in (trial, seed):
        assert not set(keys) & set(run.data.params)
        assert lay.TAG_PROTOCOL_VERSION not in run.data.tags


def test_resume_refuses_a_sweep_recorded_before_the_protocol_version(mlflow_server, tmp_path):
    name, experiment = _unique("old"), _unique("exp")
    first, space, plan = _tracker(mlflow_server, tmp_path, name=name, experiment=experiment)
    first.start(space=space, plan=plan, resume=False)
    first.finish(SweepOutcome(plan, space.metric, space.mode, (), 0), error=KeyboardInterrupt())
    client = MlflowClient(mlflow_server)
    client.delete_tag(first.parent_run_id, lay.TAG_PROTOCOL_VERSION)  # as recorded before it

    again, space, plan = _tracker(mlflow_server, tmp_path, name=name, experiment=experiment)
    with pytest.raises(UsageError, match=r"protocol version 1 .* version 2") as caught:
        again.start(space=space, plan=plan, resume=True)
    assert "\n" not in str(caught.value)


# ----- the whole sweep as a subprocess ----------------------------------------------------


def _artifact_paths(client: MlflowClient, run_id: str, path: str | None = None) -> set[str]:
    found = set()
    for item in client.list_artifacts(run_id, path):
        found |= _artifact_paths(client, run_id, item.path) if item.is_dir else {item.path}
    return found


def _all_text(client: MlflowClient, experiment_id: str) -> str:
    runs = client.search_runs([experiment_id], run_view_type=ViewType.ALL, max_results=500)
    return "\n".join(
        f"{k}={v}" for run in runs for k, v in [*run.data.params.items(), *run.data.tags.items()]
    )


def _check_seed_run(client: MlflowClient, seed_run, space, tmp_path: Path) -> None:
    run_id = seed_run.info.run_id
    assert set(seed_run.data.params) == {"objective", "seed"}  # the fixed settings: sweep run
    steps = space.base["epochs"] * space.base["steps_per_epoch"]
    for key in STEP_KEYS[:5]:
        assert _steps(client, run_id, key) == list(range(1, steps + 1)), key
    assert _steps(client, run_id, m.TRAIN_LOSS_SLOPE)  # the first window has no slope
    last_only = last_only_metrics(space.base_config.eval_features)  # the costly extra probes
    for key in (*m.EVAL_METRICS, m.TRAIN_EPOCH_LOSS):
        assert _steps(client, run_id, key) == ([10] if key in last_only else [5, 10]), key
    diag = {k for k in seed_run.data.metrics if k.startswith("diag/")}
    assert diag >= set(m.DIAG_METRICS) - {m.DIAG_STEPS_TO_TARGET, m.DIAG_TARGET_CENSORED}
    tags = seed_run.data.tags
    assert tags[lay.TAG_OVERSPECIALIZED] in ("true", "false")
    assert tags[lay.TAG_EARLY_STOP_STEP] == "none" or int(tags[lay.TAG_EARLY_STOP_STEP]) > 0
    assert _artifact_paths(client, run_id) == {lay.ARTIFACT_LOSS_CURVE, lay.ARTIFACT_HISTORY}
    history = json.loads(
        Path(client.download_artifacts(run_id, lay.ARTIFACT_HISTORY, tmp_path)).read_text()
    )
    assert history["steps"] == list(range(1, steps + 1)) and history["status"] == "completed"


@pytest.mark.slow
@pytest.mark.ray
def test_smoke_sweep_logs_one_parent_trials_and_seeds_to_a_real_server(mlflow_server, tmp_path):
    token, password = "rkdo-secret-token-4711", "rkdo-secret-pass-0815"
    host = mlflow_server.removeprefix("http://")
    experiment = _unique("smoke")
    proc = run_cli(
        "sweep",
        *("--space", "smoke.yaml", "--name", "t1", "--storage", str(tmp_path / "results")),
        *("--tracking-uri", f"http://rkdo:{password}@{host}", "--experiment", experiment),
        cwd=tmp_path,
        env={"MLFLOW_TRACKING_TOKEN": token},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"MLflow UI: http://***@{host}/#/experiments/" in proc.stdout
    client = MlflowClient(mlflow_server)
    found = client.get_experiment_by_name(experiment)
    assert found.tags[lay.EXPERIMENT_KIND_TAG] == lay.EXPERIMENT_KIND_TRAINING
    eid = found.experiment_id
    space = load_space("smoke.yaml")

    parents = _runs(client, eid, rkdo__role="sweep")
    assert len(parents) == 1 and parents[0].info.run_name == "t1"
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    assert parent.data.tags[lay.TAG_SPACE_NAME] == "smoke"
    assert parent.data.params["steps_per_epoch"] == "5"
    assert set(parent.data.params) >= set(FIELDS) - {"objective", "seed"}
    trials = _runs(client, eid, rkdo__role="trial")
    assert len(trials) == 2
    for trial in trials:
        tags, trial_id = trial.data.tags, trial.data.tags[lay.TAG_TRIAL_ID]
        objective = trial.data.params["objective"]
        assert tags[lay.TAG_PARENT] == parent.info.run_id
        assert trial.info.run_name == f"{objective} · {trial_id}"
        assert tags[lay.TAG_NODE_ID] and tags[lay.TAG_STATUS] == "completed"
        assert set(trial.data.params) == {"objective"}
        for key in m.EVAL_METRICS:
            assert _steps(client, trial.info.run_id, f"{lay.MEAN_PREFIX}{key}") == [5, 10]
            assert f"{lay.STD_PREFIX}{key}" in trial.data.metrics
            assert key not in trial.data.metrics  # the seeds' own key
        assert trial.data.metrics[lay.METRIC_FAILED] == 0.0
        assert _artifact_paths(client, trial.info.run_id) == {
            lay.ARTIFACT_TRIAL_CURVE,
            lay.ARTIFACT_SEED_TABLE,
        }
        seeds = _runs(client, eid, mlflow__parentRunId=trial.info.run_id)
        assert [s.info.run_name for s in seeds] == [f"s{s} · {objective}" for s in space.seeds]
        for seed_run in seeds:
            assert seed_run.data.tags[lay.TAG_ROLE] == lay.ROLE_SEED
            _check_seed_run(client, seed_run, space, tmp_path / trial_id)
    best_id = parent.data.tags[lay.TAG_BEST_TRIAL_ID]
    best_run = next(t for t in trials if t.data.tags[lay.TAG_TRIAL_ID] == best_id)
    assert parent.data.tags[lay.TAG_BEST_TRIAL_RUN_ID] == best_run.info.run_id
    assert math.isfinite(parent.data.metrics[f"best/{m.EVAL_LINEAR_ACC}"])
    assert best_run.data.tags[lay.TAG_RANK] == "01" and best_run.data.tags[lay.TAG_BEST] == "true"
    _check_printed_link(client, proc.stdout, host, eid, best_id)
    assert _artifact_paths(client, parent.info.run_id) == {
        lay.ARTIFACT_RESOLVED_SPACE,
        f"{lay.ARTIFACT_SPACE_DIR}/smoke.yaml",
        lay.ARTIFACT_LEADERBOARD,
    }
    # Secrets: neither the token nor the URI's password is in any param, tag, file or output.
    texts = [
        Path(client.download_artifacts(parent.info.run_id, path, tmp_path / "parent")).read_text()
        for path in _artifact_paths(client, parent.info.run_id)
    ]
    logged = "\n".join([_all_text(client, eid), *texts, proc.stdout, proc.stderr])
    assert token not in logged
    assert password not in logged
    _check_report_of_the_real_sweep(client, mlflow_server, experiment, trials, tmp_path)


def _check_printed_link(client, stdout: str, host: str, eid: str, best_id: str) -> None:
    """The printed link, its filter and order run through MLflow: exactly the trials, best first."""
    import urllib.parse

    head = f"MLflow trial runs, best first: http://{host}/#/experiments/{eid}/runs?"
    url = next(line for line in stdout.splitlines() if line.startswith(head)).split(": ", 1)[1]
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url.split("#", 1)[1]).query)
    assert query["workflowType"] == ["machine_learning"] and query["orderByAsc"] == ["true"]
    found = client.search_runs(
        [eid], filter_string=query["searchFilter"][0], order_by=[f"{query['orderByKey'][0]} ASC"]
    )
    trials = _runs(client, eid, rkdo__role="trial")
    assert {r.info.run_id for r in found} == {t.info.run_id for t in trials}
    assert found[0].data.tags[lay.TAG_TRIAL_ID] == best_id


def _check_report_of_the_real_sweep(client, server, experiment, trials, tmp_path) -> None:
    """`rkdo-tune report` on the sweep just run: its leaderboard equals the trial runs' own."""
    import csv

    out = tmp_path / "report"
    proc = run_cli(
        "report",
        "--experiment",
        experiment,
        "--tracking-uri",
        server,
        "--out",
        str(out),
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (out / "report.md").is_file() and (out / "learning_curves.png").is_file()
    assert "MLflow trial runs, best first: " in proc.stderr  # the report prints the link too
    rows = {row["trial_id"]: row for row in csv.DictReader((out / "leaderboard.csv").open())}
    assert set(rows) == {t.data.tags[lay.TAG_TRIAL_ID] for t in trials}
    for trial in trials:
        row = rows[trial.data.tags[lay.TAG_TRIAL_ID]]
        for key in (m.EVAL_LINEAR_ACC, m.EVAL_YARDSTICK_LOSS):
            mean = trial.data.metrics[f"{lay.MEAN_PREFIX}{key}"]
            assert float(row[f"{key} mean"]) == pytest.approx(mean)


@pytest.mark.slow
@pytest.mark.ray
@pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy:DeprecationWarning")
def test_without_a_uri_the_sweep_writes_mlflow_db_in_cwd_and_prints_the_ui_command(tmp_path):
    proc = run_cli(
        *("sweep", "--space", "smoke.yaml", "--name", "local"),
        *("--storage", str(tmp_path / "results"), "--set", "search.num_samples=1"),
        cwd=tmp_path,
        env={"MLFLOW_TRACKING_URI": ""},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    db = tmp_path.resolve() / "mlflow.db"
    assert db.is_file()
    command = f"mlflow ui --backend-store-uri sqlite:///{db}"
    assert any(line.endswith(command) for line in proc.stdout.splitlines()), proc.stdout
    client = MlflowClient(f"sqlite:///{db}")
    eid = client.get_experiment_by_name("smoke").experiment_id
    assert len(_runs(client, eid, rkdo__role="sweep")) == 1
    assert len(_runs(client, eid, rkdo__role="trial")) == 1
    assert len(_runs(client, eid, rkdo__role="seed")) == 1


def test_unreachable_tracking_server_fails_the_sweep_before_ray_starts(tmp_path):
    uri = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    proc = run_cli(
        *("sweep", "--space", "smoke.yaml", "--name", "unreachable"),
        *("--storage", str(tmp_path / "results"), "--tracking-uri", uri),
        cwd=tmp_path,
        timeout=60,
    )
    assert time.monotonic() - started < 15
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and uri in lines[0], proc.stderr
    assert not (tmp_path / "results").exists()
    assert not (tmp_path / "mlflow.db").exists()
