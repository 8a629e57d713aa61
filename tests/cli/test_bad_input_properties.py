"""Generated bad input: whatever a user feeds the loaders and the CLI, the answer is a valid
space (or config) or one line naming the file or option: never a traceback, nothing started.

The in-process properties call the real entry points (`load_space`, `load_config_file`,
`config_from_mapping`); a few examples of each file property also go through the real
`rkdo-tune` executable. Example counts and deadlines keep all of this to well under a minute.
"""

from __future__ import annotations

import copy
import math
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from _support import run_cli
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from rkdo_tune.config import FIELDS, TrialConfig, config_from_mapping, load_config_file
from rkdo_tune.errors import UsageError
from rkdo_tune.metrics import SEARCHABLE_METRICS
from rkdo_tune.sweep._checks import PARAM_KEYS, SECTION_KEYS, TOP_KEYS
from rkdo_tune.sweep._schema import ALGORITHMS, SCHEDULERS
from rkdo_tune.sweep.plan import SweepOptions, plan_sweep
from rkdo_tune.sweep.space import SearchSpace, load_space
from rkdo_tune.sweep.summary import format_dry_run

GOOD_SPACE = """name: ok
description: A valid space the generators below break.
metric: {name: eval/linear_acc, mode: max}
base: {dataset: digits, epochs: 1, steps_per_epoch: 2}
parameters:
  alpha: {type: float, low: 0.1, high: 0.9}
  depth: {type: int, low: 1, high: 4, when: {objective: rkdo}}
  objective: {type: categorical, choices: [rkdo, icon]}
search: {algorithm: random, num_samples: 2, max_concurrent: 1}
scheduler: {kind: asha, grace_period: 1, reduction_factor: 2}
repeats: {seeds: [42, 123]}
resources: {cpus: 1, gpus: 0}
"""
GRID_SPACE = """name: grid
description: A valid grid search the generators below break.
metric: {name: eval/linear_acc}
parameters:
  alpha: {type: float, low: 0.1, high: 0.9, step: 0.4}
  depth: {type: int, low: 1, high: 3}
search: {algorithm: grid}
"""
BUDGET_SPACE = """name: budgets
description: Valid budget points inside one run, which the generators below break.
metric: {name: eval/linear_acc}
base: {epochs: 3, alpha_schedule: step}
parameters:
  objective: {type: categorical, choices: [rkdo, icon]}
budgets: {epochs: [1, 2, 3]}
search: {algorithm: grid}
"""
MULTI_SPACE = """name: multi
description: A valid two-objective search the generators below break.
metric: [{name: eval/linear_acc, mode: max}, {name: eval/linear_acc_auc}]
parameters:
  alpha: {type: float, low: 0.1, high: 0.9}
search: {algorithm: tpe, num_samples: 2}
scheduler: {kind: none}
"""
GOOD = yaml.safe_load(GOOD_SPACE)
GOOD_SPACES = (
    GOOD,
    yaml.safe_load(GRID_SPACE),
    yaml.safe_load(BUDGET_SPACE),
    yaml.safe_load(MULTI_SPACE),
)

IN_PROCESS = settings(
    max_examples=200,
    deadline=timedelta(seconds=5),  # generous: this machine's 2 cores are shared
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
THROUGH_CLI = settings(
    max_examples=10,
    deadline=timedelta(seconds=60),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# --- strategies --------------------------------------------------------------------------

KEY_WORDS = sorted(
    {*TOP_KEYS, *PARAM_KEYS, *FIELDS, *(k for keys in SECTION_KEYS.values() for k in keys)}
)
VALUE_WORDS = sorted(
    {
        *ALGORITHMS,
        *SCHEDULERS,
        *SEARCHABLE_METRICS,
        "max",
        "min",
        "float",
        "int",
        "categorical",
        *(c for f in FIELDS.values() for c in (f.metadata.get("choices") or ())),
    }
)
HUGE_INT = 10**400  # beyond any float: float() of it raises OverflowError
NUMERIC_EXTREMES = (
    math.nan,
    math.inf,
    -math.inf,
    -0.0,
    0,
    -1,
    5e-324,
    1.7976931348623157e308,
    2**63,
    -(2**63) - 1,
    HUGE_INT,
    -HUGE_INT,
    True,
    "1e999",
    "-.inf",
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(-400, 400).map(lambda e: 10 ** abs(e) * (1 if e >= 0 else -1)),  # huge ints
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(NUMERIC_EXTREMES),
    st.text(max_size=12),
    st.sampled_from(KEY_WORDS),
    st.sampled_from(VALUE_WORDS),
    st.dates(),
    st.datetimes(),
    st.binary(max_size=8),
)
keys = st.one_of(
    st.sampled_from(KEY_WORDS),
    st.text(max_size=10),
    st.integers(),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=False),
)
documents = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=5),
    max_leaves=24,
)


def _paths(node: object, prefix: tuple = ()) -> list[tuple]:
    """Every key path into nested dicts and lists, the root () included."""
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


def _get(root: object, path: tuple) -> object:
    for part in path:
        root = root[part]
    return root


def _set(root: object, path: tuple, value: object) -> object:
    if not path:
        return value
    _get(root, path[:-1])[path[-1]] = value
    return root


@st.composite
def broken_spaces(draw: st.DrawFn) -> object:
    """The good space with one subtree replaced, removed, or shared with another (an anchor)."""
    space = copy.deepcopy(draw(st.sampled_from(GOOD_SPACES)))
    path = draw(st.sampled_from(_paths(space)))
    action = draw(st.sampled_from(["replace", "delete", "add", "share", "self"]))
    if action == "delete" and path:
        del _get(space, path[:-1])[path[-1]]
        return space
    node = _get(space, path)
    if action == "add" and isinstance(node, dict):
        node[draw(keys)] = draw(documents)
        return space
    if action == "share":  # the same object twice: safe_dump writes an anchor and an alias
        shared = draw(documents.filter(lambda v: isinstance(v, dict | list)))
        other = draw(st.sampled_from(_paths(space)))
        space = _set(space, path, shared)
        return _set(space, other, shared) if other[: len(path)] != path else space
    if action == "self" and path:  # a node that contains itself: `&a [*a]`
        loop: list = []
        loop.append(loop)
        return _set(space, path, loop)
    return _set(space, path, draw(documents))


def _dump(document: object) -> str:
    try:
        return yaml.safe_dump(document, allow_unicode=True, default_flow_style=None)
    except RecursionError:  # a self-containing node: written as YAML by hand
        return "base: &loop [*loop]\n"


@st.composite
def bytes_near_a_space(draw: st.DrawFn) -> bytes:
    """The good space's bytes with a few bytes flipped, inserted or cut off."""
    data = bytearray(GOOD_SPACE.encode())
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        edit = draw(st.sampled_from(["flip", "insert", "truncate"]))
        if edit == "flip" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif edit == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=4))
        else:
            del data[at:]
    return bytes(data)


file_bytes = st.one_of(st.binary(max_size=2048), bytes_near_a_space())
set_keys = st.one_of(
    st.text(max_size=20),
    st.lists(st.sampled_from(KEY_WORDS) | st.text(max_size=6), min_size=1, max_size=4).map(
        ".".join
    ),
)
set_values = st.one_of(st.text(max_size=20), scalars.map(_dump))
set_strings = st.one_of(
    st.text(max_size=40),
    st.tuples(set_keys, set_values).map(lambda kv: f"{kv[0]}={kv[1]}"),
)

# --- the property ---------------------------------------------------------------------------


def _one_line_naming(exc: UsageError, *names: str) -> None:
    message = str(exc)
    assert len(message.splitlines()) == 1, message
    assert "Traceback" not in message
    assert any(name in message for name in names), message


def _space_or_one_line(path: Path, overrides: tuple[str, ...] = ()) -> SearchSpace | None:
    """Load the space: valid (and its dry-run renders), or one line naming the file or --set."""
    try:
        space = load_space(path, overrides=list(overrides))
    except UsageError as exc:
        _one_line_naming(exc, str(path), *(["--set"] if overrides else []))
        return None
    plan = plan_sweep(space, SweepOptions(name="prop", storage=str(path.parent / "results")))
    assert format_dry_run(space, plan)
    return space


def _config_or_one_line(path: Path) -> TrialConfig | None:
    try:
        return load_config_file(path)
    except UsageError as exc:
        _one_line_naming(exc, str(path))
        return None


def _cli_one_line(proc, *names: str) -> None:
    """Exit 2 with exactly one stderr line naming the file (or option), no traceback."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith("rkdo-tune: error: ")
    assert any(name in lines[0] for name in names), lines[0]


def _nothing_written(folder: Path) -> None:
    assert not (folder / "mlflow.db").exists()
    assert not (folder / "rkdo_results").exists()
    assert not (folder / "results").exists()


# --- in process: the loaders ----------------------------------------------------------------


@IN_PROCESS
@given(data=file_bytes)
def test_any_bytes_as_a_space_file(tmp_path, data):
    path = tmp_path / "space.yaml"
    path.write_bytes(data)
    _space_or_one_line(path)
    _nothing_written(tmp_path)


@IN_PROCESS
@given(data=file_bytes)
def test_any_bytes_as_a_train_config(tmp_path, data):
    path = tmp_path / "config.yaml"
    path.write_bytes(data)
    _config_or_one_line(path)


@IN_PROCESS
@given(document=st.one_of(documents, broken_spaces()))
def test_any_yaml_document_as_a_space(tmp_path, document):
    path = tmp_path / "space.yaml"
    path.write_text(_dump(document))
    _space_or_one_line(path)


@IN_PROCESS
@given(document=st.one_of(documents, st.dictionaries(st.sampled_from(list(FIELDS)), scalars)))
def test_any_yaml_document_as_a_train_config(tmp_path, document):
    path = tmp_path / "config.yaml"
    path.write_text(_dump(document))
    _config_or_one_line(path)


@IN_PROCESS
@given(overrides=st.lists(set_strings, min_size=1, max_size=3))
def test_any_set_override(tmp_path, overrides):
    path = tmp_path / "space.yaml"
    path.write_text(GOOD_SPACE)
    _space_or_one_line(path, tuple(overrides))


@IN_PROCESS
@given(field=st.sampled_from(list(FIELDS)), value=st.sampled_from(NUMERIC_EXTREMES))
def test_numeric_extremes_for_each_config_field(field, value):
    try:
        config = config_from_mapping({field: value}, source="extremes.yaml")
    except UsageError as exc:
        _one_line_naming(exc, "extremes.yaml")
        assert field in str(exc)
    else:
        assert isinstance(config, TrialConfig)


NUMERIC_SLOTS = [
    *((("base", name),) for name in FIELDS if name != "seed"),
    (("parameters", "alpha", "low"),),
    (("parameters", "alpha", "high"),),
    (("parameters", "alpha", "step"),),
    (("parameters", "depth", "low"),),
    (("parameters", "depth", "high"),),
    (("search", "num_samples"),),
    (("search", "max_concurrent"),),
    (("search", "seed"),),
    (("scheduler", "grace_period"),),
    (("scheduler", "reduction_factor"),),
    (("resources", "cpus"),),
    (("resources", "gpus"),),
    (("repeats", "seeds", 0),),
]


@IN_PROCESS
@given(slot=st.sampled_from(NUMERIC_SLOTS), value=st.sampled_from(NUMERIC_EXTREMES))
def test_numeric_extremes_in_every_numeric_slot_of_a_space(tmp_path, slot, value):
    (path_in_space,) = slot
    space = copy.deepcopy(GOOD)
    node = space
    for part in path_in_space[:-1]:
        node = node.setdefault(part, {})
    node[path_in_space[-1]] = value
    path = tmp_path / "space.yaml"
    path.write_text(_dump(space))
    _space_or_one_line(path)


# --- through the real CLI: a handful of examples each --------------------------------------


@pytest.mark.slow
@THROUGH_CLI
@given(data=file_bytes)
def test_cli_spaces_validate_any_bytes(tmp_path, data):
    path = tmp_path / "space.yaml"
    path.write_bytes(data)
    proc = run_cli("spaces", "validate", str(path), cwd=tmp_path, timeout=60)
    if proc.returncode == 0:
        assert _space_or_one_line(path) is not None
    else:
        _cli_one_line(proc, str(path))
    _nothing_written(tmp_path)


@pytest.mark.slow
@THROUGH_CLI
@given(document=st.one_of(documents, broken_spaces()), overrides=st.lists(set_strings, max_size=2))
def test_cli_sweep_dry_run_any_space_and_set(tmp_path, document, overrides):
    path = tmp_path / "space.yaml"
    path.write_text(_dump(document))
    sets = [arg for text in overrides for arg in ("--set", text)]
    proc = run_cli(
        "sweep",
        "--dry-run",
        "--space",
        str(path),
        *sets,
        "--name",
        "prop",
        cwd=tmp_path,
        timeout=60,
    )
    if proc.returncode == 0:
        assert "dry run: nothing was started" in proc.stdout
    else:
        _cli_one_line(proc, str(path), "--set")
    _nothing_written(tmp_path)


@pytest.mark.slow
@THROUGH_CLI
@given(data=file_bytes)
def test_cli_train_config_any_bytes(tmp_path, data):
    path = tmp_path / "config.yaml"
    path.write_bytes(data)
    assume(_config_or_one_line(path) is None)  # a valid config would start training
    proc = run_cli("train", "--config", str(path), cwd=tmp_path, timeout=60)
    _cli_one_line(proc, str(path))
    _nothing_written(tmp_path)
