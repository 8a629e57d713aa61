"""The search-space API: resolution, overrides, updates, define-by-run sampling, samplers."""

from __future__ import annotations

import importlib.util
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import optuna
import pytest

import rkdo_tune
from rkdo_tune.config import TrialConfig
from rkdo_tune.errors import UsageError
from rkdo_tune.sweep import (
    count_trials,
    list_spaces,
    load_space,
    make_sampler,
    resolve_space_path,
    trial_config,
)

SPACE = """\
name: conditional
description: Conditional RKDO knobs next to I-Con. Used by the tests.
metric: {name: eval/yardstick_loss}
base: {dataset: digits, epochs: 2, steps_per_epoch: 3}
parameters:
  objective: {type: categorical, choices: [rkdo, icon]}
  alpha: {type: float, low: 0.05, high: 1.0, log: true, when: {objective: rkdo}}
  depth: {type: int, low: 1, high: 8, when: {objective: [rkdo]}}
  lr: {type: float, low: 0.0001, high: 0.01, log: true}
  tau: {type: float, low: 0.1, high: 0.9, step: 0.2}
search:
  algorithm: tpe
  num_samples: 40
  points_to_evaluate: [{objective: rkdo, alpha: 0.1}, {objective: icon}]
repeats: 2
"""


@pytest.fixture
def space_file(tmp_path: Path) -> Path:
    path = tmp_path / "conditional.yaml"
    path.write_text(SPACE)
    return path


def test_defaults_and_derived_values(space_file):
    space = load_space(space_file)
    assert space.mode == "min"  # from metrics.MODE_OF
    assert space.seeds == (42, 123)
    assert space.search.seed == 0 and space.search.max_concurrent == 1
    assert space.scheduler.kind == "none"
    assert space.resources.cpus == 1 and space.resources.gpus == 0
    assert count_trials(space) == 80
    assert space.description.startswith("Conditional RKDO knobs")
    assert [p.name for p in space.parameters] == ["objective", "alpha", "depth", "lr", "tau"]


def test_sample_params_respects_when_ranges_and_points(space_file, run_study):
    space = load_space(space_file)
    sampled = run_study(space)
    assert sampled[0]["objective"] == "rkdo" and sampled[0]["alpha"] == 0.1
    assert sampled[1]["objective"] == "icon"
    kinds = {params["objective"] for params in sampled}
    assert kinds == {"rkdo", "icon"}
    for params in sampled:
        if params["objective"] == "icon":
            assert "alpha" not in params and "depth" not in params
        else:
            assert 0.05 <= params["alpha"] <= 1.0
            assert isinstance(params["depth"], int) and 1 <= params["depth"] <= 8
        assert 1e-4 <= params["lr"] <= 1e-2
        assert round(params["tau"], 6) in {0.1, 0.3, 0.5, 0.7, 0.9}
        for seed in space.seeds:
            config = trial_config(space, params, seed=seed)
            assert isinstance(config, TrialConfig)
            assert (config.seed, config.epochs, config.dataset) == (seed, 2, "digits")


def test_a_point_fixes_some_parameters_and_the_sampler_adds_the_rest(space_file, run_study):
    (first, *_rest) = run_study(load_space(space_file))
    assert set(first) == {"objective", "alpha", "depth", "lr", "tau"}


def test_trial_config_names_the_space_file_for_a_bad_combination(space_file):
    space = load_space(space_file)
    with pytest.raises(UsageError, match=rf"^{space_file}: trial .*alpha.*\(0, 1\]"):
        trial_config(space, {"alpha": 2.0}, seed=42)


def test_overrides_are_applied_before_validation(space_file):
    space = load_space(
        space_file,
        overrides=[
            "base.dataset=synthetic",
            "search.num_samples=4",
            "parameters.alpha.high=0.8",
            "repeats.seeds=[7, 8, 9]",
            "scheduler.kind=asha",
            "parameters.alpha.when.objective=[rkdo]",
            "parameters.weight_decay={type: float, low: 0.0, high: 0.001}",
        ],
    )
    assert space.base["dataset"] == "synthetic"
    assert space.search.num_samples == 4
    alpha = next(p for p in space.parameters if p.name == "alpha")
    assert alpha.high == 0.8
    assert space.seeds == (7, 8, 9)  # repeats was a count: it becomes a mapping
    assert space.scheduler.kind == "asha"
    assert space.parameters[-1].name == "weight_decay"
    assert space.raw["repeats"] == {"seeds": [7, 8, 9]}
    assert count_trials(space) == 12


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("search.num_smaples=4", r"--set search\.num_smaples: .*'num_smaples'.*'num_samples'"),
        ("serch.num_samples=4", r"--set serch\.num_samples: .*'serch'.*'search'"),
        ("base.alpah=0.3", r"--set base\.alpah: .*'alpah'.*'alpha'"),
        ("parameters.alpah.high=0.3", r"--set parameters\.alpah\.high: .*'alpah'.*'alpha'"),
        ("parameters.alpha.hihg=0.3", r"--set parameters\.alpha\.hihg: .*'hihg'.*'high'"),
        ("search.points_to_evaluate.x=1", r"--set search\.points_to_evaluate\.x: "),
        ("nonsense", r"--set: expected key=value"),
    ],
)
def test_unknown_override_paths_name_set_and_the_key(space_file, override, expected):
    with pytest.raises(UsageError, match=expected):
        load_space(space_file, overrides=[override])


def test_an_override_with_a_bad_value_names_the_file_and_key(space_file):
    with pytest.raises(UsageError, match=rf"^{space_file}: parameters\.alpha\.high: 1\.5 is"):
        load_space(space_file, overrides=["parameters.alpha.high=1.5"])


def test_with_updates_revalidates_and_leaves_the_original(space_file):
    space = load_space(space_file)
    updated = space.with_updates(num_samples=3, max_concurrent=3, cpus=2, gpus=0.25)
    assert updated.search.num_samples == 3 and updated.search.max_concurrent == 3
    assert updated.resources.cpus == 2 and updated.resources.gpus == 0.25
    assert updated.raw["resources"] == {"cpus": 2, "gpus": 0.25}
    assert space.search.num_samples == 40 and "resources" not in space.raw
    assert space.with_updates() == space
    with pytest.raises(UsageError, match=rf"^{space_file}: resources\.cpus: 0 is invalid"):
        space.with_updates(cpus=0)
    with pytest.raises(UsageError, match=r"search\.points_to_evaluate: .*num_samples \(1\)"):
        space.with_updates(num_samples=1)


def test_an_int_step_of_null_means_one(space_file):
    space = load_space(space_file, overrides=["parameters.depth.step=null"])
    assert next(p for p in space.parameters if p.name == "depth").step == 1


def test_the_space_pickles_for_ray(space_file):
    space = load_space(space_file)
    assert pickle.loads(pickle.dumps(space)) == space


@pytest.mark.parametrize(
    ("algorithm", "sampler"),
    [
        ("tpe", optuna.samplers.TPESampler),
        ("random", optuna.samplers.RandomSampler),
        ("qmc", optuna.samplers.QMCSampler),
    ],
)
def test_make_sampler_maps_each_algorithm(space_file, algorithm, sampler, run_study):
    space = load_space(space_file, overrides=[f"search.algorithm={algorithm}"])
    assert isinstance(make_sampler(space), sampler)
    same = run_study(space.with_updates(num_samples=3), make_sampler(space))
    again = run_study(space.with_updates(num_samples=3), make_sampler(space))
    assert same == again  # seeded


def test_cmaes_is_mapped_or_rejected_at_load_time(space_file):
    if importlib.util.find_spec("cmaes") is None:
        with pytest.raises(UsageError, match=r"search\.algorithm: 'cmaes' is invalid: .*pip"):
            load_space(space_file, overrides=["search.algorithm=cmaes"])
    else:
        space = load_space(space_file, overrides=["search.algorithm=cmaes"])
        assert isinstance(make_sampler(space), optuna.samplers.CmaEsSampler)


def test_grid_sampler_visits_every_point_once(tmp_path, run_study):
    path = tmp_path / "grid.yaml"
    path.write_text(
        textwrap.dedent("""\
        name: grid
        description: A grid.
        metric: {name: eval/linear_acc}
        parameters:
          objective: {type: categorical, choices: [rkdo, icon]}
          depth: {type: int, low: 1, high: 5, step: 2}
          tau: {type: float, low: 0.25, high: 0.75, step: 0.25}
        search: {algorithm: grid}
        """)
    )
    space = load_space(path)
    assert space.search.num_samples == 18  # defaults to the grid size
    assert isinstance(make_sampler(space), optuna.samplers.GridSampler)
    seen = {tuple(sorted(p.items())) for p in run_study(space)}
    assert len(seen) == 18
    assert {dict(p)["depth"] for p in seen} == {1, 3, 5}
    assert {dict(p)["tau"] for p in seen} == {0.25, 0.5, 0.75}
    assert count_trials(space.with_updates(num_samples=5)) == 5


def test_bare_names_resolve_to_packaged_spaces():
    by_name = resolve_space_path("smoke")
    assert by_name == resolve_space_path("smoke.yaml")
    assert by_name.name == "smoke.yaml" and by_name.is_file()
    assert load_space("smoke").source == by_name


def test_an_unknown_name_lists_the_spaces_and_suggests_one():
    with pytest.raises(
        UsageError, match=r"unknown search space 'smok'.*'smoke\.yaml'.*alpha_ablation"
    ):
        resolve_space_path("smok")


def test_a_missing_path_is_one_line(tmp_path):
    with pytest.raises(UsageError, match=r"no such search-space file"):
        load_space(tmp_path / "nope.yaml")


def test_an_existing_file_wins_over_a_packaged_name(tmp_path, monkeypatch, space_file):
    monkeypatch.chdir(space_file.parent)
    (space_file.parent / "smoke.yaml").write_text(SPACE)
    assert load_space("smoke.yaml").name == "conditional"


def test_package_directory_is_searched_before_the_repository(tmp_path, monkeypatch):
    package = tmp_path / "site" / "rkdo_tune"
    (package / "search_spaces").mkdir(parents=True)
    (tmp_path / "site" / "search_spaces").mkdir()
    (package / "search_spaces" / "smoke.yaml").write_text(SPACE)
    (tmp_path / "site" / "search_spaces" / "smoke.yaml").write_text("name: other")
    (tmp_path / "site" / "search_spaces" / "extra.yaml").write_text("description: Extra. More.")
    monkeypatch.setattr(rkdo_tune, "__file__", str(package / "__init__.py"))
    assert resolve_space_path("smoke") == package / "search_spaces" / "smoke.yaml"
    assert list_spaces() == [
        ("extra.yaml", "Extra."),
        ("smoke.yaml", "Conditional RKDO knobs next to I-Con."),
    ]


def test_a_failed_load_starts_nothing(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(SPACE.replace("high: 1.0", "high: 1.5"))
    code = f"""
import sys
from rkdo_tune.errors import UsageError
from rkdo_tune.sweep import load_space
for target in ({str(bad)!r}, "alpha_ablation"):
    try:
        load_space(target, overrides=["search.num_samples=9"])
    except UsageError as exc:
        print(exc)
heavy = sorted(m for m in ("ray", "mlflow", "optuna") if m in sys.modules)
print("imported:", heavy)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert f"{bad}: parameters.alpha.high: 1.5 is invalid" in out.stdout
    assert "imported: []" in out.stdout


def test_each_run_monitors_the_metric_the_space_searches(tmp_path):
    """Peak, overspecialisation and steps-to-target follow `metric:`, unless base says."""
    from rkdo_tune.sweep.space import load_space, trial_config

    text = textwrap.dedent(
        """\
        name: knn
        description: A search on the kNN accuracy.
        metric: {name: eval/knn_acc}
        parameters:
          alpha: {type: float, low: 0.1, high: 0.9}
        """
    )
    path = tmp_path / "space.yaml"
    path.write_text(text)
    space = load_space(path)
    assert trial_config(space, {"alpha": 0.5}, seed=1).monitor_metric == "eval/knn_acc"
    assert space.base_config.monitor_metric == "eval/knn_acc"
    kept = load_space(path, overrides=["base.monitor_metric=eval/nmi"])
    assert kept.base_config.monitor_metric == "eval/nmi"
    path.write_text(text.replace("eval/knn_acc", "eval/linear_acc_auc"))
    assert load_space(path).base_config.monitor_metric == "eval/linear_acc"  # not a curve's own
