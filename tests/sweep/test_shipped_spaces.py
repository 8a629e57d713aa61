"""The packaged search spaces: each loads, samples valid trials, and does what it says."""

from __future__ import annotations

import re
from pathlib import Path

import optuna
import pytest

from rkdo_tune.sweep import (
    count_trials,
    list_spaces,
    load_space,
    make_sampler,
    trial_config,
)
from rkdo_tune.sweep._schema import PAPER_SEEDS, PARAM_KEYS, SECTION_KEYS, TOP_KEYS

# Spaces that train only RKDO get the I-Con control arm: one more configuration.
TRAINING_RUNS = {
    "smoke.yaml": 2,
    # RKDO's study and I-Con's, each 6 samples and its default; each one's best and both
    # defaults confirmed on 3 fresh seeds
    "alpha_ablation.yaml": 2 * (6 + 1) * 3 + (1 + 1 + 2) * 3,
    "depth_ablation.yaml": (8 + 1) * 2,
    "temperature_schedule.yaml": 2 * (12 + 1) * 2,  # I-Con tuned: a study of its own
    "adaptive_alpha.yaml": 2 * (16 + 1) * 2,
    "resource_parity.yaml": 2 * 5,  # budget points 1, 2 and 5 inside one run each
    "paper_protocol.yaml": 2 * 5,  # budget points 1, 2, 5 and 10 inside one run each
    "pareto_alpha_depth.yaml": (8 + 1) * 2,
}
README = Path(__file__).parents[2] / "search_spaces" / "README.md"
RKDO_ONLY = {"alpha", "depth", "alpha_schedule", "alpha_min", "alpha_decay_factor"}


def test_the_packaged_spaces_are_the_documented_ones():
    assert sorted(name for name, _ in list_spaces()) == sorted(TRAINING_RUNS)


@pytest.mark.parametrize("file_name", sorted(TRAINING_RUNS))
def test_each_space_loads_counts_and_samples_valid_offline_trials(file_name, run_study):
    space = load_space(file_name)
    assert space.name == Path(file_name).stem
    assert count_trials(space) == TRAINING_RUNS[file_name]
    assert space.base["dataset"] == "digits" and space.base["model"] == "small_cnn"
    assert space.resources.gpus == 0
    for params in run_study(space):
        for seed in space.seeds:
            config = trial_config(space, params, seed=seed)
            assert config.dataset == "digits" and not config.download
            steps = config.epochs * (config.steps_per_epoch or 22)  # digits: 22 batches of 64
            assert steps <= 110, "shipped spaces stay CPU-cheap"
        if params.get("objective") == "icon":
            assert not RKDO_ONLY & set(params), "RKDO-only knobs are not sampled for I-Con"


def test_every_rkdo_only_space_has_the_icon_control_arm():
    for file_name in TRAINING_RUNS:
        space = load_space(file_name)
        samples_objective = any(p.name == "objective" for p in space.parameters)
        assert (space.baseline is None) == samples_objective, file_name
    ablation = load_space("alpha_ablation.yaml")
    assert ablation.confirm.top == 1 and ablation.confirm.seeds == (789, 101, 7)
    # the main job's claim is tuned against tuned (issue 18 §2)
    assert ablation.baseline_study().search.num_samples == ablation.search.num_samples


def test_list_spaces_gives_each_first_sentence():
    summaries = dict(list_spaces())
    for file_name, summary in summaries.items():
        assert summary.endswith(".") and len(summary) < 160
        assert load_space(file_name).description.startswith(summary)


def test_smoke_is_tiny_and_covers_both_objectives(run_study):
    space = load_space("smoke")
    configs = [trial_config(space, p, seed=42) for p in run_study(space)]
    assert {c.objective for c in configs} == {"rkdo", "icon"}
    assert all(c.epochs * c.steps_per_epoch <= 10 and c.protocol == "paper" for c in configs)
    assert space.seeds == (42,)


def test_alpha_ablation_tries_the_suggested_values_first(run_study):
    space = load_space("alpha_ablation")
    sampled = run_study(space)
    assert [p["alpha"] for p in sampled[:3]] == [0.1, 0.2, 0.4]
    assert all(0.05 <= p["alpha"] <= 1.0 for p in sampled)
    assert len({p["alpha"] for p in sampled}) == 6
    assert space.base["objective"] == "rkdo" and space.seeds == (42, 123, 456)


def test_depth_ablation_runs_every_depth_once(run_study):
    sampled = run_study(load_space("depth_ablation"))
    assert sorted(p["depth"] for p in sampled) == list(range(1, 9))


def test_temperature_schedule_starts_from_the_code_and_the_text(run_study):
    space = load_space("temperature_schedule")
    sampled = run_study(space)
    assert [p["tau_schedule"] for p in sampled[:2]] == ["level", "linear"]
    assert all(0 <= p["beta"] < 1 and 0.05 <= p["tau"] <= 1 for p in sampled)
    assert space.scheduler.kind == "asha" and space.scheduler.grace_period == 2


def test_adaptive_alpha_samples_each_kinds_own_knobs_only(run_study):
    space = load_space("adaptive_alpha", overrides=["search.num_samples=60"])
    own = {
        "constant": set(),
        "linear": {"alpha_min"},
        "cosine": {"alpha_min"},
        "exponential": {"alpha_min"},
        "step": {"alpha_min", "alpha_decay_factor", "alpha_step_every"},
        "plateau": {"alpha_min", "alpha_decay_factor", "alpha_patience"},
    }
    seen = set()
    for params in run_study(space):
        kind = params["alpha_schedule"]
        seen.add(kind)
        assert set(params) == {"alpha", "alpha_schedule"} | own[kind]
        assert params.get("alpha_min", 0) < params["alpha"]
    assert seen == set(own)


def test_resource_parity_reads_its_three_budgets_off_one_run_per_objective(run_study):
    space = load_space("resource_parity")
    configs = [trial_config(space, p, seed=42) for p in run_study(space)]
    assert sorted((c.objective, c.epochs) for c in configs) == [("icon", 5), ("rkdo", 5)]
    assert space.budget_epochs == (1, 2, 5)  # RKDO's claim at 1 and 2, I-Con's run at 5
    assert all(c.steps_per_epoch == 11 and c.eval_batches == 11 for c in configs)
    assert space.seeds == PAPER_SEEDS


def test_paper_protocol_is_the_full_grid_over_five_seeds(run_study):
    space = load_space("paper_protocol")
    assert isinstance(make_sampler(space), optuna.samplers.GridSampler)
    assert {p["objective"] for p in run_study(space)} == {"rkdo", "icon"}
    assert space.budget_epochs == (1, 2, 5, 10)  # the tables' epochs, inside one run
    assert space.seeds == (42, 123, 456, 789, 101)
    assert "steps_per_epoch" not in space.base and space.base["protocol"] == "paper"
    config = trial_config(space, {"objective": "icon"}, seed=42)
    assert (config.epochs, config.steps_per_epoch, config.eval_batches) == (10, 11, 11)
    assert config.kl_eps == 1e-8


@pytest.mark.parametrize("name", ["depth_ablation", "adaptive_alpha", "temperature_schedule"])
def test_an_explicit_full_pass_keeps_its_budget_under_the_paper_protocol(name, run_study):
    """`steps_per_epoch: null` wins over the paper preset's 11: 5 x 22 = 110 steps."""
    space = load_space(name)
    config = trial_config(space, run_study(space)[0], seed=42)
    assert (config.protocol, config.steps_per_epoch, config.epochs) == ("paper", None, 5)
    assert (config.eval_batches, config.kl_eps) == (11, 1e-8)  # the rest is the preset's


def test_paper_protocol_takes_the_papers_dataset_by_override():
    space = load_space("paper_protocol", overrides=["base.dataset=cifar10", "base.model=resnet18"])
    config = trial_config(space, {"objective": "rkdo"}, seed=101)
    assert (config.dataset, config.model, config.steps_per_epoch) == ("cifar10", "resnet18", 11)


def test_the_readme_documents_every_key_and_space():
    text = README.read_text()
    keys = set(TOP_KEYS) | set(PARAM_KEYS)
    keys |= {
        key
        for section, ks in SECTION_KEYS.items()
        if section not in ("base", "baseline", "parameters")  # these take every config key
        for key in ks
    }
    missing = sorted(key for key in keys if not re.search(rf"`{key}`", text))
    assert not missing, f"search_spaces/README.md does not mention {missing}"
    for file_name in TRAINING_RUNS:
        assert file_name in text


@pytest.mark.parametrize("file_name", sorted(set(TRAINING_RUNS) - {"smoke.yaml"}))
def test_each_comparison_space_evaluates_at_least_ten_times_per_run(file_name, run_study):
    from rkdo_tune.training.run_setup import evaluation_steps

    space = load_space(file_name)
    for params in run_study(space):
        config = trial_config(space, params, seed=space.seeds[0])
        per_epoch = config.steps_per_epoch or 22  # digits: 22 batches of 64
        assert len(evaluation_steps(config, steps_per_epoch=per_epoch)) >= 10, params


def test_pareto_alpha_depth_searches_two_objectives_from_the_reference(run_study):
    space = load_space("pareto_alpha_depth")
    assert [(o.name, o.mode) for o in space.objectives] == [
        ("eval/linear_acc", "max"),
        ("eval/linear_acc_auc", "max"),
    ]
    assert space.scheduler.kind == "none" and space.baseline == {"objective": "icon"}
    sampled = run_study(space)  # Optuna's multi-objective TPE, as the sweep runs it
    assert sampled[0] == {"alpha": 0.5, "depth": 3}
    assert all(0.05 <= p["alpha"] <= 1 and 1 <= p["depth"] <= 6 for p in sampled)
    assert len({(p["alpha"], p["depth"]) for p in sampled}) == 8
