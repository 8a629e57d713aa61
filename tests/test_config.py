"""TrialConfig: defaults follow the reference; every bad value is one clear UsageError."""

from __future__ import annotations

import dataclasses

import pytest

from rkdo_tune.config import (
    TrialConfig,
    config_from_mapping,
    load_config_file,
    parse_override,
)
from rkdo_tune.errors import UsageError
from rkdo_tune.protocols import PRESET_FIELDS, PRESETS


def test_defaults_follow_the_reference_code():
    c = TrialConfig()
    assert (c.alpha, c.depth, c.tau, c.beta) == (0.5, 3, 0.5, 0.1)
    assert (c.lr, c.weight_decay, c.batch_size) == (1e-3, 1e-5, 64)
    assert (c.debias, c.kernel, c.recursion, c.tau_schedule) == (
        0.2,
        "gaussian",
        "in_batch",
        "level",
    )
    assert c.head_dim == 64 and c.head_batchnorm is False


def test_config_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        TrialConfig().alpha = 0.3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("mapping", "fragments"),
    [
        ({"alpha": 0.0}, ["'alpha'", "0.0", "(0, 1]"]),
        ({"alpha": 1.5}, ["'alpha'", "1.5"]),
        ({"depth": 0}, ["'depth'", "0", ">= 1"]),
        ({"tau": -0.1}, ["'tau'", "-0.1", "> 0"]),
        ({"beta": 1.0}, ["'beta'", "1.0", "tau to 0"]),
        ({"dataset": "mnist"}, ["'dataset'", "mnist", "digits"]),
        ({"objective": "simclr"}, ["'objective'", "simclr"]),
        ({"alpah": 0.3}, ["unknown key 'alpah'", "did you mean 'alpha'"]),
        ({"depth": "3"}, ["'depth'", "int", "'3'"]),
        ({"depth": True}, ["'depth'", "int", "True"]),
        ({"batch_size": 1}, ["'batch_size'", "1"]),
        ({"monitor_metric": "eval/accuracy"}, ["'monitor_metric'", "eval/accuracy"]),
        ({"alpha_schedule": "linear", "alpha": 0.2, "alpha_min": 0.5}, ["'alpha_min'", "0.5"]),
        ({"protocol": "paper_2025"}, ["'protocol'", "paper_latest"]),
        ({"kl_eps": -1e-8}, ["'kl_eps'", ">= 0"]),
        ({"eval_batches": 0}, ["'eval_batches'", "or none"]),
        ({"steps_per_epoch": 0}, ["'steps_per_epoch'", "full pass"]),
        ({"kmeans_k": "auto"}, ["'kmeans_k'", "labels, classes"]),
        ({"kmeans_n_init": 0}, ["'kmeans_n_init'", ">= 1"]),
    ],
)
def test_bad_values_name_the_source_key_and_value(mapping, fragments):
    with pytest.raises(UsageError) as info:
        config_from_mapping(mapping, source="trial.yaml")
    message = str(info.value)
    assert message.startswith("trial.yaml: ")
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message


@pytest.mark.parametrize("protocol", list(PRESETS))
@pytest.mark.parametrize("dataset", ["digits", "stl10"])
def test_a_protocol_fills_the_fields_a_run_leaves_out(protocol, dataset):
    config = config_from_mapping({"protocol": protocol, "dataset": dataset}, source="x")
    preset = PRESETS[protocol].values(dataset)
    assert {key: getattr(config, key) for key in PRESET_FIELDS} == preset
    assert TrialConfig(protocol=protocol, dataset=dataset) == config  # the same one place


def test_the_published_tables_protocol_is_the_default():
    c = TrialConfig()
    assert (c.protocol, c.steps_per_epoch, c.eval_batches, c.batch_size) == ("paper", 11, 11, 64)
    assert (c.kl_eps, c.kmeans_n_init, c.kmeans_k) == (1e-8, 1, "labels")
    stl10 = TrialConfig(dataset="stl10")
    assert (stl10.batch_size, stl10.eval_batch_size) == (32, 32)  # 11 x 32 = 352 scored
    full = TrialConfig(protocol="full", dataset="stl10")
    assert (full.steps_per_epoch, full.eval_batches, full.batch_size) == (None, None, 64)
    assert (full.kl_eps, full.kmeans_n_init, full.kmeans_k) == (0.0, 10, "classes")


def test_an_explicit_value_wins_over_the_preset_none_included(tmp_path):
    given = {"steps_per_epoch": None, "batch_size": 64, "kl_eps": 0.0, "eval_batches": None}
    config = config_from_mapping({"protocol": "paper", "dataset": "stl10", **given}, source="x")
    assert {key: getattr(config, key) for key in given} == given
    assert (config.eval_batch_size, config.kmeans_n_init) == (32, 1)  # the rest: the preset's
    path = tmp_path / "trial.yaml"
    path.write_text("protocol: paper_latest\nsteps_per_epoch: null\n")
    from_file = load_config_file(path, {"eval_batches": 3})
    assert (from_file.steps_per_epoch, from_file.eval_batches, from_file.kl_eps) == (None, 3, 0.0)


def test_ints_are_accepted_for_float_fields():
    assert config_from_mapping({"tau": 1}, source="x").tau == 1.0


def test_load_config_file_overrides_win(tmp_path):
    path = tmp_path / "trial.yaml"
    path.write_text("alpha: 0.2\ndepth: 5\n")
    config = load_config_file(path, {"depth": 2})
    assert (config.alpha, config.depth) == (0.2, 2)


def test_malformed_yaml_gives_the_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("alpha: 0.2\ndepth: [1, 2\nbeta: 0.1\n")
    with pytest.raises(UsageError, match=r"bad.yaml: malformed YAML at line \d+"):
        load_config_file(path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("alpha=0.3", ("alpha", 0.3)),
        ("steps_per_epoch=none", ("steps_per_epoch", None)),
        ("dataset=cifar10", ("dataset", "cifar10")),
        ("detach_target=true", ("detach_target", True)),
    ],
)
def test_parse_override_types_values(text, expected):
    assert parse_override(text) == expected


def test_parse_override_needs_an_equals_sign():
    with pytest.raises(UsageError, match="key=value"):
        parse_override("alpha")
