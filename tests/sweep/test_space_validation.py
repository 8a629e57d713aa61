"""Every load-time rejection of a search space: one row per rule, one UsageError line each."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from rkdo_tune.errors import UsageError
from rkdo_tune.sweep import load_space
from rkdo_tune.sweep._checks import SET_BY_SWEEP
from rkdo_tune.sweep.space import Objective

DELETE = object()

VALID: dict[str, Any] = {
    "name": "t",
    "description": "A test space.",
    "metric": {"name": "eval/linear_acc", "mode": "max"},
    "base": {"dataset": "digits", "epochs": 2},
    "parameters": {
        "objective": {"type": "categorical", "choices": ["rkdo", "icon"]},
        "alpha": {"type": "float", "low": 0.1, "high": 0.9, "when": {"objective": "rkdo"}},
        "depth": {"type": "int", "low": 1, "high": 8, "when": {"objective": ["rkdo"]}},
    },
    "search": {
        "algorithm": "tpe",
        "seed": 0,
        "num_samples": 4,
        "max_concurrent": 2,
        "points_to_evaluate": [{"objective": "rkdo", "alpha": 0.2}],
    },
    "scheduler": {"kind": "asha", "grace_period": 1, "reduction_factor": 2},
    "repeats": {"seeds": [42, 123]},
    "resources": {"cpus": 1, "gpus": 0.25},
}

GRID = {  # a grid-ready variant: no conditions, no points
    "search.algorithm": "grid",
    "search.points_to_evaluate": DELETE,
    "parameters.alpha.when": DELETE,
    "parameters.depth.when": DELETE,
    "parameters.alpha.step": 0.1,
}


MULTI = {  # two objectives: the scheduler must be none
    "metric": [
        {"name": "eval/linear_acc", "mode": "max"},
        {"name": "eval/linear_acc_auc", "mode": "max"},
    ],
    "scheduler.kind": "none",
}


def edited(edits: dict[str, Any]) -> dict[str, Any]:
    data = copy.deepcopy(VALID)
    for dotted, value in edits.items():
        *parents, last = dotted.split(".")
        node = data
        for key in parents:
            node = node.setdefault(key, {})
        if value is DELETE:
            node.pop(last, None)
        else:
            node[last] = value
    return data


def write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_the_valid_space_and_its_grid_variant_load(tmp_path):
    assert load_space(write(tmp_path, VALID)).name == "t"
    assert load_space(write(tmp_path, edited(GRID))).search.num_samples == 4


ROWS = [
    # unknown keys, with suggestions
    ("top-level", {"serch": {}}, "serch", "did you mean 'search'"),
    ("param-attr", {"parameters.alpha.hihg": 1}, "parameters.alpha.hihg", "'high'"),
    ("base-key", {"base.alpah": 0.3}, "base.alpah", "did you mean 'alpha'"),
    ("param-name", {"parameters.alpah": {"type": "float"}}, "parameters.alpah", "'alpha'"),
    ("search-key", {"search.num_smaples": 3}, "search.num_smaples", "'num_samples'"),
    ("metric-key", {"metric.mod": "max"}, "metric.mod", "'mode'"),
    ("scheduler-key", {"scheduler.grace": 1}, "scheduler.grace", "unknown key"),
    ("resources-key", {"resources.gpu": 1}, "resources.gpu", "'gpus'"),
    ("repeats-key", {"repeats.seed": [1]}, "repeats.seed", "'seeds'"),
    ("when-key", {"parameters.depth.when": {"objectiv": "rkdo"}}, "when.objectiv", "'objective'"),
    # missing required keys
    ("no-description", {"description": DELETE}, "description", "missing"),
    ("no-type", {"parameters.alpha.type": DELETE}, "parameters.alpha.type", "missing"),
    ("no-high", {"parameters.alpha.high": DELETE}, "parameters.alpha.high", "missing"),
    ("no-choices", {"parameters.objective.choices": DELETE}, "objective.choices", "missing"),
    # wrong types
    ("low-not-number", {"parameters.alpha.low": "small"}, "parameters.alpha.low", "'small'"),
    ("yaml-exponent", {"parameters.alpha.low": "1e-1"}, "parameters.alpha.low", "with a dot"),
    ("choices-not-list", {"parameters.objective.choices": "rkdo"}, "objective.choices", "'rkdo'"),
    ("num-samples-float", {"search.num_samples": 2.5}, "search.num_samples", "2.5"),
    ("num-samples-bool", {"search.num_samples": True}, "search.num_samples", "True"),
    ("int-low-float", {"parameters.depth.low": 1.5}, "parameters.depth.low", "1.5"),
    ("log-not-bool", {"parameters.alpha.log": "yes"}, "parameters.alpha.log", "'yes'"),
    ("base-type", {"base.epochs": "5"}, "base.epochs", "'5'"),
    ("choice-type", {"parameters.objective.choices": ["rkdo", 3]}, "choices[1]", "3"),
    ("type-kind", {"parameters.depth.type": "float"}, "parameters.depth.type", "int values"),
    ("unknown-type", {"parameters.alpha.type": "real"}, "parameters.alpha.type", "'real'"),
    ("categorical-low", {"parameters.objective.low": 1}, "parameters.objective.low", "1"),
    ("range-choices", {"parameters.alpha.choices": [0.1]}, "parameters.alpha.choices", "0.1"),
    # empty or inverted ranges, bad steps and logs
    ("float-empty", {"parameters.alpha.low": 0.9}, "parameters.alpha.high", "0.9"),
    ("int-inverted", {"parameters.depth.low": 5, "parameters.depth.high": 2}, "depth.high", "2"),
    ("empty-choices", {"parameters.objective.choices": []}, "objective.choices", "[]"),
    ("dup-choice", {"parameters.objective.choices": ["rkdo", "rkdo"]}, "choices[1]", "'rkdo'"),
    ("step-zero", {"parameters.alpha.step": 0}, "parameters.alpha.step", "0"),
    ("step-negative", {"parameters.depth.step": -1}, "parameters.depth.step", "-1"),
    ("step-too-big", {"parameters.depth.step": 10}, "parameters.depth.step", "larger"),
    ("step-not-multiple", {"parameters.depth.step": 3}, "parameters.depth.step", "multiple"),
    ("log-low-zero", {"parameters.depth.log": True, "parameters.depth.low": 0}, "depth.low", "0"),
    ("log-and-step", {"parameters.alpha.log": True, "parameters.alpha.step": 0.1}, "step", "log"),
    # config rules, found by building a TrialConfig at low, high and each choice
    ("alpha-high", {"parameters.alpha.high": 1.5}, "parameters.alpha.high", "(0, 1]"),
    ("depth-low", {"parameters.depth.low": 0}, "parameters.depth.low", "depth must be >= 1"),
    (
        "tau-low",
        {"parameters.tau": {"type": "float", "low": 0.0, "high": 1.0}},
        "parameters.tau.low",
        "tau must be > 0",
    ),
    (
        "beta-high",
        {"parameters.beta": {"type": "float", "low": 0.0, "high": 1.0}},
        "parameters.beta.high",
        "beta must lie in [0, 1)",
    ),
    ("bad-choice", {"parameters.objective.choices": ["rkdo", "icnn"]}, "choices[1]", "'icnn'"),
    (
        "cross-field",  # alpha_min above a low alpha breaks alpha_min's own rule
        {
            "base.alpha_schedule": "linear",
            "base.alpha_min": 0.3,
            "parameters.alpha.low": 0.2,
            "search.points_to_evaluate": DELETE,
        },
        "parameters.alpha.low",
        "alpha_min=0.3",
    ),
    ("base-value", {"base.alpha": 1.5}, "base.alpha", "alpha must lie in (0, 1]"),
    ("base-seed", {"base.seed": 1}, "base.seed", "repeats.seeds"),
    ("param-seed", {"parameters.seed": {"type": "int"}}, "parameters.seed", "repeats.seeds"),
    (
        "also-in-base",
        {"base.depth": 3, "parameters.depth.when": DELETE},
        "parameters.depth",
        "base",
    ),
    ("no-parameters", {"parameters": {}}, "parameters", "at least one"),
    # metric
    ("metric-unknown", {"metric.name": "eval/linear_ac"}, "metric.name", "'eval/linear_acc'?"),
    ("metric-not-searchable", {"metric.name": "diag/steps"}, "metric.name", "'diag/steps'"),
    ("mode", {"metric.mode": "maximize"}, "metric.mode", "'maximize'"),
    # several objectives
    ("multi-asha", {**MULTI, "scheduler.kind": "asha"}, "scheduler.kind", "2 objectives"),
    ("multi-median", {**MULTI, "scheduler.kind": "median"}, "scheduler.kind", "'median'"),
    ("multi-empty", {"metric": []}, "metric", "[]"),
    ("multi-not-mapping", {**MULTI, "metric": ["eval/linear_acc"]}, "metric[0]", "mapping"),
    (
        "multi-duplicate",
        {
            **MULTI,
            "metric": [{"name": "eval/linear_acc"}, {"name": "eval/linear_acc", "mode": "min"}],
        },
        "metric[1].name",
        "duplicate objective",
    ),
    (
        "multi-unknown",
        {**MULTI, "metric": [{"name": "eval/linear_acc"}, {"name": "eval/linear_acc_area"}]},
        "metric[1].name",
        "'eval/linear_acc_auc'",
    ),
    (
        "multi-mode",
        {**MULTI, "metric": [{"name": "eval/nmi"}, {"name": "eval/ari", "mode": "up"}]},
        "metric[1].mode",
        "'up'",
    ),
    (
        "multi-key",
        {**MULTI, "metric": [{"name": "eval/nmi", "mod": "max"}]},
        "metric[0].mod",
        "mode",
    ),
    # conditions that can never hold
    ("when-impossible", {"parameters.depth.when": {"objective": "rkod"}}, "when.objective", "rkod"),
    ("when-fixed", {"parameters.depth.when": {"dataset": "cifar10"}}, "when.dataset", "'cifar10'"),
    ("when-default", {"parameters.depth.when": {"kernel": "student_t"}}, "when.kernel", "fixed"),
    ("when-later", {"parameters.alpha.when": {"depth": 3}}, "parameters.alpha.when.depth", "3"),
    ("when-self", {"parameters.alpha.when": {"alpha": 0.5}}, "alpha.when.alpha", "0.5"),
    (
        "when-range",
        {
            "parameters.alpha.when": {"objective": "rkdo"},
            "parameters.lr": {"type": "float", "low": 1e-4, "high": 1e-2, "when": {"depth": 9}},
        },
        "parameters.lr.when.depth",
        "9",
    ),
    ("when-type", {"parameters.depth.when": {"objective": 1}}, "when.objective", "1"),
    ("when-empty", {"parameters.depth.when": {"objective": []}}, "when.objective", "[]"),
    # points_to_evaluate
    (
        "point-unknown",
        {"search.points_to_evaluate": [{"alpah": 0.2}]},
        "points_to_evaluate[0].alpah",
        "'alpha'",
    ),
    (
        "point-out-of-range",
        {"search.points_to_evaluate": [{"alpha": 0.95}]},
        "points_to_evaluate[0].alpha",
        "0.95",
    ),
    (
        "point-bad-choice",
        {"search.points_to_evaluate": [{"objective": "both"}]},
        "points_to_evaluate[0].objective",
        "'both'",
    ),
    (
        "point-not-sampled",
        {"search.points_to_evaluate": [{"objective": "icon", "alpha": 0.2}]},
        "points_to_evaluate[0].alpha",
        "not sampled here",
    ),
    ("points-not-list", {"search.points_to_evaluate": {"alpha": 0.2}}, "points_to_evaluate", "0.2"),
    (
        "too-many-points",
        {"search.num_samples": 1, "search.points_to_evaluate": [{"alpha": 0.2}, {"alpha": 0.3}]},
        "search.points_to_evaluate",
        "only the first",
    ),
    # search settings
    ("algorithm", {"search.algorithm": "bayes"}, "search.algorithm", "'bayes'"),
    ("max-concurrent", {"search.max_concurrent": 0}, "search.max_concurrent", "0"),
    ("seed-negative", {"search.seed": -1}, "search.seed", "-1"),
    ("grid-float", {**GRID, "parameters.alpha.step": DELETE}, "parameters.alpha.step", "finite"),
    ("grid-when", {**GRID, "parameters.depth.when": {"objective": "rkdo"}}, "depth.when", "grid"),
    ("grid-too-many", {**GRID, "search.num_samples": 200}, "search.num_samples", "200"),
    (
        "grid-points",
        {**GRID, "search.points_to_evaluate": [{"depth": 2}]},
        "points_to_evaluate",
        "2",
    ),
    # scheduler
    ("scheduler-kind", {"scheduler.kind": "hyperband"}, "scheduler.kind", "'hyperband'"),
    ("grace", {"scheduler.grace_period": 0}, "scheduler.grace_period", "0"),
    ("reduction", {"scheduler.reduction_factor": 1}, "scheduler.reduction_factor", "1"),
    # repeats and resources
    ("dup-seeds", {"repeats.seeds": [42, 123, 42]}, "repeats.seeds[2]", "42"),
    ("str-seed", {"repeats.seeds": [42, "123"]}, "repeats.seeds[1]", "'123'"),
    ("bool-seed", {"repeats.seeds": [True]}, "repeats.seeds[0]", "True"),
    ("empty-seeds", {"repeats.seeds": []}, "repeats.seeds", "[]"),
    ("n-too-big", {"repeats": 6}, "repeats", "6"),
    ("n-zero", {"repeats": 0}, "repeats", "0"),
    ("n-seeds-too-big", {"repeats.seeds": 9}, "repeats.seeds", "9"),
    ("cpus-zero", {"resources.cpus": 0}, "resources.cpus", "0"),
    ("gpus-negative", {"resources.gpus": -1}, "resources.gpus", "-1"),
    ("cpus-str", {"resources.cpus": "two"}, "resources.cpus", "'two'"),
    # identity
    ("name", {"name": "Alpha Ablation"}, "name", "'Alpha Ablation'"),
    ("description-empty", {"description": " "}, "description", "' '"),
    ("not-a-mapping", {"search": [1, 2]}, "search", "[1, 2]"),
]


@pytest.mark.parametrize(("edits", "path", "text"), [r[1:] for r in ROWS], ids=[r[0] for r in ROWS])
def test_rejected_with_one_line_naming_file_key_and_value(tmp_path, edits, path, text):
    space_file = write(tmp_path, edited(edits))
    with pytest.raises(UsageError) as caught:
        load_space(space_file)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{space_file}: ")
    assert path in message
    assert text in message


def test_malformed_yaml_names_the_line(tmp_path):
    space_file = tmp_path / "broken.yaml"
    space_file.write_text("name: t\nparameters:\n  alpha: {type: float, low: 0.1\n")
    with pytest.raises(UsageError, match=r"broken\.yaml: malformed YAML at line \d+"):
        load_space(space_file)


@pytest.mark.parametrize(("text", "expected"), [("", "empty"), ("- 1\n- 2\n", "mapping")])
def test_empty_or_non_mapping_file(tmp_path, text, expected):
    space_file = tmp_path / "odd.yaml"
    space_file.write_text(text)
    with pytest.raises(UsageError, match=expected):
        load_space(space_file)


def test_several_objectives_load_with_the_first_as_primary(tmp_path):
    space = load_space(
        write(
            tmp_path,
            edited({**MULTI, "metric": [*MULTI["metric"], {"name": "eval/yardstick_loss"}]}),
        )
    )
    assert [(o.name, o.mode) for o in space.objectives] == [
        ("eval/linear_acc", "max"),
        ("eval/linear_acc_auc", "max"),
        ("eval/yardstick_loss", "min"),  # the metric's own direction by default
    ]
    assert (space.metric, space.mode) == ("eval/linear_acc", "max")
    assert space.verdict.metric == "eval/linear_acc"
    # Optuna's GridSampler ignores the values, so a grid serves several objectives too.
    assert len(load_space(write(tmp_path, edited({**GRID, **MULTI}))).objectives) == 2
    one = load_space(write(tmp_path, edited({"metric": [{"name": "eval/nmi"}]})))
    assert [(o.name, o.mode) for o in one.objectives] == [("eval/nmi", "max")]  # asha is fine
    assert load_space(write(tmp_path, VALID)).objectives == (Objective("eval/linear_acc", "max"),)


def test_several_objectives_refuse_cma_es(tmp_path):
    pytest.importorskip("cmaes")  # without it the space is refused for that reason first
    space_file = write(tmp_path, edited({**MULTI, "search.algorithm": "cmaes"}))
    with pytest.raises(UsageError, match=r"search\.algorithm: 'cmaes' is invalid: .*CmaEsSampler"):
        load_space(space_file)


@pytest.mark.parametrize("section", ["base", "parameters", "baseline"])
@pytest.mark.parametrize("key", sorted(SET_BY_SWEEP))
def test_fields_the_sweep_sets_are_refused_in_every_section(tmp_path, section, key):
    """The seed and the scored split come from the sweep (repeats, stage), never a file."""
    raw = edited({"parameters.objective": DELETE, "parameters.alpha.when": DELETE})
    raw["parameters"].pop("depth")
    raw["search"].pop("points_to_evaluate")
    raw["baseline"] = {}
    value = {"seed": 1, "eval_split": "validation"}[key]
    raw[section][key] = value if section != "parameters" else {"type": "categorical"}
    space_file = write(tmp_path, raw)
    with pytest.raises(UsageError) as caught:
        load_space(space_file)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{space_file}: {section}.{key}: ")
    assert SET_BY_SWEEP[key] in message


def test_the_search_selects_on_validation_only_with_a_confirmation_stage(tmp_path):
    plain = load_space(write(tmp_path, edited({})))
    assert plain.eval_split("search") == plain.eval_split("confirmation") == "test"
    confirming = load_space(write(tmp_path, edited({"confirm": {"top": 1}})))
    assert confirming.eval_split("search") == "validation"
    assert confirming.eval_split("confirmation") == "test"
    assert confirming.base_config.eval_split == "test"  # the floors' and the sweep run's
