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
