"""The run layout a person reads in the MLflow UI (issue 16), through MlflowClient on a real server.

One small study is logged the way Ray would log it, without Ray: the real trial
observer drives real trainers (two tied search trials, a third, the I-Con baseline
and a confirmation stage), then the real tracker closes the sweep. Everything below
reads that store back as the UI would.
"""

from __future__ import annotations

import dataclasses
import json
import math
import pickle
import urllib.parse
import uuid
from pathlib import Path

import pytest
from mlflow import MlflowClient

from rkdo_tune import metrics as m
from rkdo_tune.config import FIELDS
from rkdo_tune.errors import UsageError
from rkdo_tune.inference import mean_ci
from rkdo_tune.report import write_reports
from rkdo_tune.sweep._judge import judge
from rkdo_tune.sweep.plan import SweepOptions, plan_sweep
from rkdo_tune.sweep.protocol import (
    SEARCH_ROLE,
    SweepOutcome,
    TrialRole,
    TrialSummary,
    trial_device,
)
from rkdo_tune.sweep.space import load_space, trial_config
from rkdo_tune.sweep.trial import REASON_KEY, STATUS_KEY, aggregate, build_trainers
from rkdo_tune.tracking import MlflowSweepTracker, reading
from rkdo_tune.tracking import layout as lay
from rkdo_tune.tracking._seed import on_stride, step_stride
from rkdo_tune.tracking._tracker import step_points
from rkdo_tune.verdict import ARM_BASELINE, STAGE_CONFIRMATION

OVERRIDES = [
    "base.epochs=2",
    "base.steps_per_epoch=5",
    "base.protocol=paper",
    "repeats.seeds=[42, 123]",
    "search.num_samples=3",
    "confirm.top=1",
    "confirm.seeds=[789]",  # one fresh seed: a mean with no interval
]
STEPS = 10
STEP_POINTS = 4  # 10 steps at stride 3: steps 1, 3, 6, 9 and 10 reach MLflow
# The study trains 8 seeds of 10 steps: a minute or more on a shared 2-core machine.
STUDY = pytest.mark.slow
SECTIONS = ("search.", "scheduler.", "resources.", "repeats.", lay.SPEC_PARAM_PREFIX)


def _run_trial(factory, space, params, *, trial_id, role=SEARCH_ROLE, seeds=None):
    """What sweep_trial does on a worker, without Ray; returns the trial's summary."""
    observer = pickle.loads(pickle.dumps(factory))()
    configs = [
        dataclasses.replace(config, device=trial_device(config.device, space))  # as on Ray
        for config in (trial_config(space, params, seed=s) for s in seeds or space.seeds)
    ]
    callbacks = observer.seed_callbacks(
        params=params, configs=configs, trial_id=trial_id, node_id="node-test", role=role
    )
    trainers = build_trainers(configs, callbacks)
    for trainer in trainers:
        trainer.start()
    while any([trainer.run_epoch() for trainer in trainers]):
        observer.on_report(aggregate(trainers))
    report = aggregate(trainers, [trainer.finish() for trainer in trainers])
    observer.on_report(report)
    observer.on_finish(report=report, error=None)
    return TrialSummary(
        trial_id=trial_id,
        params=params,
        value=report[space.metric],
        std=report[f"{space.metric}_std"],
        status=report[STATUS_KEY],
        reason=report.get(REASON_KEY, ""),
        epochs=report["epoch"],
        metrics=report,
        role=role,
    )


@pytest.fixture(scope="module")
def study(mlflow_server, tmp_path_factory):
    """(client, tracker, outcome, summary lines) of one logged study."""
    monkey = pytest.MonkeyPatch()
    monkey.setenv(lay.STEP_POINTS_ENV, str(STEP_POINTS))
    space = load_space("alpha_ablation.yaml", overrides=OVERRIDES)
    storage = tmp_path_factory.mktemp("results")
    plan = plan_sweep(
        space, SweepOptions(name=f"layout-{uuid.uuid4().hex[:6]}", storage=str(storage))
    )
    experiment = f"layout-{uuid.uuid4().hex[:8]}"
    tracker = MlflowSweepTracker(tracking_uri=mlflow_server, experiment=experiment)
    tracker.start(space=space, plan=plan, resume=False)
    monkey.undo()
    factory = tracker.observer_factory()
    # t1 and t2 are the same configuration, so they tie exactly; t1 is opened first.
    search = [
        _run_trial(factory, space, {"alpha": 0.2}, trial_id="t1"),
        _run_trial(factory, space, {"alpha": 0.2}, trial_id="t2"),
        _run_trial(
            factory, space, dict(space.baseline), trial_id="tb", role=TrialRole(ARM_BASELINE)
        ),
    ]
    outcome = SweepOutcome(plan, space.metric, space.mode, tuple(search), 0)
    best = outcome.ranked()[0]
    confirm = [
        (best.params, TrialRole(confirms=best.trial_id, stage=STAGE_CONFIRMATION), "c1"),
        (dict(space.baseline), TrialRole(ARM_BASELINE, STAGE_CONFIRMATION, "tb"), "cb"),
    ]
    confirmation = tuple(
        _run_trial(factory, space, params, trial_id=tid, role=role, seeds=space.confirm.seeds)
        for params, role, tid in confirm
    )
    outcome = judge(
        SweepOutcome(plan, space.metric, space.mode, tuple(search), 0, 0, confirmation), space
    )
    lines = tracker.finish(outcome)
    return MlflowClient(mlflow_server), tracker, outcome, lines, space


def _with_role(client, tracker, role):
    query = f"tags.`{lay.TAG_ROLE}` = '{role}'"
    return client.search_runs([tracker.experiment_id], filter_string=query, max_results=100)


def _trials(client, tracker):
    """{trial id: trial run}."""
    return {run.data.tags[lay.TAG_TRIAL_ID]: run for run in _with_role(client, tracker, "trial")}


@STUDY
def test_trials_tie_exactly_and_the_best_is_the_earlier_trial_id(study):
    _, _, outcome, _, _ = study
    values = {t.trial_id: t.value for t in outcome.trials}
    assert values["t1"] == values["t2"]  # same configuration, same seeds: the tie of the issue
    ranked = [t.trial_id for t in outcome.ranked()]
    assert ranked.index("t2") == ranked.index("t1") + 1  # the tie goes to the smaller id


@STUDY
def test_run_names_put_what_distinguishes_a_run_first(study):
    client, tracker, outcome, _, _ = study
    trials = _trials(client, tracker)
    names = {trial_id: run.info.run_name for trial_id, run in trials.items()}
    best = outcome.ranked()[0]
    assert names == {
        "t1": "α=0.2 · t1",
        "t2": "α=0.2 · t2",
        "tb": "icon · baseline",
        "c1": f"{names[best.trial_id].split(' · ')[0]} · {best.trial_id} re-run",
        "cb": "icon · baseline re-run",
    }
    seeds = client.search_runs(
        [tracker.experiment_id],
        filter_string=f"tags.`{lay.TAG_PARENT}` = '{trials['t1'].info.run_id}'",
    )
    assert sorted(run.info.run_name for run in seeds) == ["s123 · α=0.2", "s42 · α=0.2"]
    baseline_seeds = client.search_runs(
        [tracker.experiment_id],
        filter_string=f"tags.`{lay.TAG_PARENT}` = '{trials['tb'].info.run_id}'",
    )
    assert sorted(r.info.run_name for r in baseline_seeds) == [
        "s123 · icon · baseline",
        "s42 · icon · baseline",
    ]


@STUDY
def test_one_key_per_thing_at_every_level(study):
    client, tracker, _, _, space = study
    sweep = client.get_run(tracker.parent_run_id)
    trials = _trials(client, tracker)
    seeds = _with_role(client, tracker, "seed")
    # The sweep run: the fixed settings once, under plain names; the rest by section.
    fixed = {k for k in sweep.data.params if k in FIELDS}
    assert fixed == set(FIELDS) - {"alpha", "seed"}
    assert sweep.data.params["lr"] == str(space.base_config.lr)
    assert sweep.data.tags[lay.TAG_LAYOUT] == str(lay.LAYOUT_VERSION)
    others = set(sweep.data.params) - fixed - {"metric", "mode"}
    assert all(key.startswith(SECTIONS) for key in others), others
    # Trials and seeds: the searched value under its plain name, no prefixed key anywhere.
    for run in [*trials.values(), *seeds]:
        keys = set(run.data.params)
        assert not any(key.startswith(("config.", "base.")) for key in keys), keys
        assert not keys & fixed - {"objective"}, keys  # only the baseline overrides one
    assert set(trials["t1"].data.params) == {"alpha", "log10_alpha"}
    assert float(trials["t1"].data.params["log10_alpha"]) == pytest.approx(math.log10(0.2))
    assert set(trials["tb"].data.params) == {"objective"}
    for seed in seeds:
        trial = next(t for t in trials.values() if t.info.run_id == seed.data.tags[lay.TAG_PARENT])
        assert set(seed.data.params) == set(trial.data.params) | {"seed"}
    # No tag repeats what the sweep run says, and no tag is empty.
    for run in [*trials.values(), *seeds]:
        assert lay.TAG_SWEEP_NAME not in run.data.tags
        assert lay.TAG_PROTOCOL_VERSION not in run.data.tags
        assert all(value != "" for value in run.data.tags.values())
    assert lay.TAG_REASON not in sweep.data.tags


@STUDY
def test_seed_means_have_their_own_keys_and_seeds_keep_theirs(study):
    client, tracker, outcome, _, _ = study
    trials = _trials(client, tracker)
    for trial_id, run in trials.items():
        metrics = run.data.metrics
        assert not any(key.startswith(("eval/", "train/")) for key in metrics), trial_id
        summary = next(
            t for t in (*outcome.trials, *outcome.confirmation) if t.trial_id == trial_id
        )
        assert metrics[f"{lay.MEAN_PREFIX}{m.EVAL_LINEAR_ACC}"] == pytest.approx(summary.value)
        assert metrics[f"{lay.STD_PREFIX}{m.EVAL_LINEAR_ACC}"] == pytest.approx(summary.std)
        values = list(summary.per_seed(m.EVAL_LINEAR_ACC).values())
        ci95 = metrics.get(f"{lay.CI95_PREFIX}{m.EVAL_LINEAR_ACC}")
        if len(values) < 2:  # the confirmation's one fresh seed: no interval
            assert ci95 is None
        else:
            interval = mean_ci(values)
            assert ci95 == pytest.approx((interval.hi - interval.lo) / 2)
    seeds = _with_role(client, tracker, "seed")
    for seed in seeds:
        assert m.EVAL_LINEAR_ACC in seed.data.metrics
        assert not any(key.startswith(("mean/", "std/", "ci95/")) for key in seed.data.metrics)


@STUDY
def test_ranks_and_the_best_mark_follow_the_one_definition_of_best(study, tmp_path):
    client, tracker, outcome, _, _ = study
    trials = _trials(client, tracker)
    ranks = {trial_id: run.data.tags[lay.TAG_RANK] for trial_id, run in trials.items()}
    ranked = [t.trial_id for t in outcome.ranked()]
    assert ranks == {
        **{trial_id: f"{i:02d}" for i, trial_id in enumerate(ranked, start=1)},
        "tb": lay.RANK_BASELINE,
        "c1": "01",  # the re-run of the best
        "cb": lay.RANK_BASELINE,
    }
    assert [t for t, run in trials.items() if run.data.tags.get(lay.TAG_BEST)] == ranked[:1]
    # The report's leaderboard ranks the same trials the same way.
    write_reports(
        tracking_uri=client.tracking_uri,
        experiment=None,
        sweep=tracker.parent_run_id,
        out=tmp_path,
        say=lambda line: None,
    )
    import csv

    rows = list(csv.DictReader((tmp_path / "leaderboard.csv").open()))
    reported = {row["trial_id"]: row["rank"] for row in rows if row["rank"]}
    assert {t: int(float(r)) for t, r in reported.items()} == {t: int(ranks[t]) for t in ranked}


@STUDY
def test_the_printed_link_lists_exactly_the_trial_runs_best_first(study):
    client, tracker, outcome, lines, _ = study
    links = [line for line in lines if line.startswith("MLflow trial runs, best first: ")]
    assert len(links) == 1
    url = links[0].split(": ", 1)[1]
    assert url.startswith(f"{client.tracking_uri}/#/experiments/{tracker.experiment_id}/runs?")
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url.split("#", 1)[1]).query)
    assert query["workflowType"] == ["machine_learning"]
    assert query["orderByAsc"] == ["true"]
    found = client.search_runs(
        [tracker.experiment_id],
        filter_string=query["searchFilter"][0],
        order_by=[f"{query['orderByKey'][0]} ASC"],
    )
    ranked = [t.trial_id for t in outcome.ranked()]
    assert ranked == ["t1", "t2"]
    assert [run.data.tags[lay.TAG_TRIAL_ID] for run in found] == [*ranked, "tb"]
    # Why the link sorts by rank: a sort by the tied seed-mean lists the later trial first.
    by_mean = client.search_runs(
        [tracker.experiment_id],
        filter_string=query["searchFilter"][0],
        order_by=[f"metrics.`{lay.MEAN_PREFIX}{m.EVAL_LINEAR_ACC}` DESC"],
    )
    tied = [r.data.tags[lay.TAG_TRIAL_ID] for r in by_mean if r.data.tags[lay.TAG_TRIAL_ID] != "tb"]
    assert tied == ["t2", "t1"]
    confirm = [line for line in lines if line.startswith("MLflow confirmation re-runs")]
    url = confirm[0].split(": ", 1)[1]
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url.split("#", 1)[1]).query)
    found = client.search_runs(
        [tracker.experiment_id],
        filter_string=query["searchFilter"][0],
        order_by=[f"{query['orderByKey'][0]} ASC"],
    )
    assert [run.data.tags[lay.TAG_TRIAL_ID] for run in found] == ["c1", "cb"]


@STUDY
def test_the_sweep_runs_description_holds_the_verdict_and_the_links(study):
    client, tracker, _, lines, _ = study
    tags = client.get_run(tracker.parent_run_id).data.tags
    note = tags[lay.TAG_NOTE]
    assert note.startswith(f"**Verdict:** {tags[lay.TAG_VERDICT]}")
    for line in lines:
        if line.startswith("MLflow trial runs") or line.startswith("MLflow confirmation"):
            assert line.split(": ", 1)[1] in note


@STUDY
def test_the_experiment_is_of_the_model_training_kind(study):
    client, tracker, _, _, _ = study
    experiment = client.get_experiment(tracker.experiment_id)
    assert experiment.tags[lay.EXPERIMENT_KIND_TAG] == lay.EXPERIMENT_KIND_TRAINING


@STUDY
def test_every_trial_run_has_its_curve_and_per_seed_table(study, tmp_path):
    client, tracker, _, _, _ = study
    for trial_id, run in _trials(client, tracker).items():
        paths = {
            item.path
            for folder in ("plots", "tables")
            for item in client.list_artifacts(run.info.run_id, folder)
        }
        assert paths == {lay.ARTIFACT_TRIAL_CURVE, lay.ARTIFACT_SEED_TABLE}, trial_id
    run = _trials(client, tracker)["t1"]
    table = Path(client.download_artifacts(run.info.run_id, lay.ARTIFACT_SEED_TABLE, str(tmp_path)))
    rows = table.read_text().splitlines()
    assert rows[0].startswith(f"seed,status,{m.EVAL_LINEAR_ACC},")
    assert [row.split(",")[0] for row in rows[1:]] == ["42", "123"]


@STUDY
def test_per_step_metrics_are_strided_and_history_json_keeps_every_step(study, tmp_path):
    client, tracker, _, _, _ = study
    seed = client.search_runs(
        [tracker.experiment_id], filter_string=f"tags.`{lay.TAG_ROLE}` = 'seed'", max_results=1
    )[0]
    logged = sorted(p.step for p in client.get_metric_history(seed.info.run_id, m.TRAIN_LOSS))
    assert logged == [1, 3, 6, 9, 10]
    evals = sorted(p.step for p in client.get_metric_history(seed.info.run_id, m.EVAL_LINEAR_ACC))
    assert evals == [5, 10]  # evaluations are never strided
    path = client.download_artifacts(seed.info.run_id, lay.ARTIFACT_HISTORY, str(tmp_path))
    assert json.loads(Path(path).read_text())["steps"] == list(range(1, STEPS + 1))


@STUDY
def test_the_reader_merges_fixed_settings_and_reads_curves_from_history_json(study):
    client, tracker, outcome, _, space = study
    alphas = {t.trial_id: t for t in (*outcome.trials, *outcome.confirmation)}
    info = reading.find_sweeps(client, experiment=None, sweep=tracker.parent_run_id)[0]
    assert info.layout == lay.LAYOUT_VERSION
    assert lay.SPEC_FALLBACK not in info.parameter_specs["alpha"]
    runs = reading.load_sweep(client, info, history_keys=(m.TRAIN_LOSS, m.EVAL_LINEAR_ACC))
    base = space.base_config
    for _, row in runs.seeds.iterrows():
        assert (row["lr"], row["epochs"], row["dataset"]) == (base.lr, base.epochs, base.dataset)
        assert row["objective"] == ("icon" if row["trial_id"] in ("tb", "cb") else "rkdo")
        params = alphas[row["trial_id"]].params
        assert row["alpha"] == pytest.approx(params.get("alpha", base.alpha))  # else the fallback
    assert runs.trial_params["t1"] == {"alpha": 0.2}
    one = runs.seeds["run_id"].iloc[0]
    loss = runs.history[(runs.history["run_id"] == one) & (runs.history["key"] == m.TRAIN_LOSS)]
    assert sorted(loss["step"]) == list(range(1, STEPS + 1))  # full resolution
    acc = runs.history[(runs.history["run_id"] == one) & (runs.history["key"] == m.EVAL_LINEAR_ACC)]
    assert sorted(acc["step"]) == [5, 10]


def test_resume_refuses_a_sweep_of_the_old_layout_in_one_line(mlflow_server, tmp_path):
    space = load_space("smoke.yaml")
    name = f"old-{uuid.uuid4().hex[:6]}"
    plan = plan_sweep(space, SweepOptions(name=name, storage=str(tmp_path)))
    experiment = f"old-{uuid.uuid4().hex[:8]}"
    first = MlflowSweepTracker(tracking_uri=mlflow_server, experiment=experiment)
    first.start(space=space, plan=plan, resume=False)
    first.finish(SweepOutcome(plan, space.metric, space.mode, (), 0), error=KeyboardInterrupt())
    MlflowClient(mlflow_server).delete_tag(first.parent_run_id, lay.TAG_LAYOUT)  # as before
    again = MlflowSweepTracker(tracking_uri=mlflow_server, experiment=experiment)
    with pytest.raises(UsageError, match=r"run layout 1 .* layout 2") as caught:
        again.start(space=space, plan=plan, resume=True)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("total", "points", "sent"),
    [(10, 200, list(range(1, 11))), (10, 0, list(range(1, 11))), (10, 4, [1, 3, 6, 9, 10])],
)
def test_the_stride_keeps_at_most_the_points_asked_for_plus_the_ends(total, points, sent):
    stride = step_stride(total, points)
    assert [
        s for s in range(1, total + 1) if on_stride(s, stride=stride, total_steps=total)
    ] == sent


def test_a_long_run_sends_a_few_hundred_points_per_key():
    total = 3000
    stride = step_stride(total, lay.DEFAULT_STEP_POINTS)
    sent = [s for s in range(1, total + 1) if on_stride(s, stride=stride, total_steps=total)]
    assert lay.DEFAULT_STEP_POINTS <= len(sent) <= lay.DEFAULT_STEP_POINTS + 2


@pytest.mark.parametrize(("text", "points"), [("", lay.DEFAULT_STEP_POINTS), ("0", 0), ("50", 50)])
def test_the_step_points_come_from_the_environment(text, points):
    assert step_points({lay.STEP_POINTS_ENV: text}) == points


@pytest.mark.parametrize("text", ["-1", "many", "2.5"])
def test_a_bad_step_points_value_is_one_line(text):
    with pytest.raises(UsageError, match=lay.STEP_POINTS_ENV) as caught:
        step_points({lay.STEP_POINTS_ENV: text})
    assert "\n" not in str(caught.value)
