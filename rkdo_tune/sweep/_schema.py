"""The search-space YAML schema: parsing, `--set` overrides and load-time validation.

Every check raises one `UsageError` line of the form
``<file>: <key.path>: <value> is invalid: <reason>`` (or ``unknown key`` /
``missing``), so a bad space fails before anything is started. Range and
choice rules of config values are not restated here: they come from building
a `TrialConfig` (see `_check_values`).
"""

from __future__ import annotations

import copy
import importlib.util
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rkdo_tune.config import (
    FIELDS,
    InvalidValue,
    TrialConfig,
    coerce_value,
    field_kind,
    parse_override,
    suggest_key,
)
from rkdo_tune.errors import UsageError
from rkdo_tune.metrics import MODE_OF, SEARCHABLE_METRICS

PAPER_SEEDS = (42, 123, 456, 789, 101)
ALGORITHMS = ("tpe", "cmaes", "random", "grid", "qmc")
SCHEDULERS = ("none", "asha", "median")
PARAM_TYPES = ("float", "int", "categorical")
MODES = ("max", "min")
DEFAULT_NUM_SAMPLES = 10

TOP_KEYS = (
    "name",
    "description",
    "metric",
    "base",
    "parameters",
    "search",
    "scheduler",
    "repeats",
    "resources",
)
REQUIRED_TOP_KEYS = ("name", "description", "metric", "parameters")
PARAM_KEYS = ("type", "low", "high", "step", "log", "choices", "when")
SECTION_KEYS: dict[str, tuple[str, ...]] = {
    "metric": ("name", "mode"),
    "search": ("algorithm", "seed", "num_samples", "max_concurrent", "points_to_evaluate"),
    "scheduler": ("kind", "grace_period", "reduction_factor"),
    "repeats": ("seeds",),
    "resources": ("cpus", "gpus"),
    "base": tuple(FIELDS),
    "parameters": tuple(FIELDS),
}
# Config values a trial gets unless the base or a sampled parameter sets them.
DEFAULTS: dict[str, Any] = {name: spec.default for name, spec in FIELDS.items()}
_NAME = re.compile(r"[a-z0-9_-]+")


@dataclass(frozen=True)
class Parameter:
    """One searched TrialConfig field. `when` maps a field name to the values it must have."""

    name: str
    kind: str  # float | int | categorical
    low: float | int | None = None
    high: float | int | None = None
    step: float | int | None = None
    log: bool = False
    choices: tuple[Any, ...] = ()
    when: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)

    def contains(self, value: Any) -> bool:
        """Whether the parameter can take `value` (a choice, or on its range and step)."""
        if self.kind == "categorical":
            return any(_same(value, choice) for choice in self.choices)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if not self.low <= value <= self.high:
            return False
        return self.step is None or _on_step(value - self.low, self.step)

    def describe(self) -> str:
        if self.kind == "categorical":
            return "choices " + ", ".join(map(repr, self.choices))
        step = "" if self.step in (None, 1) else f" step {self.step}"
        return f"range [{self.low}, {self.high}]{step}{' (log)' if self.log else ''}"

    def grid(self) -> tuple[Any, ...] | None:
        """Every value of a finite parameter, or None for a float without a step."""
        if self.kind == "categorical":
            return self.choices
        if self.kind == "int":
            return tuple(range(self.low, self.high + 1, self.step))
        if self.step is None:
            return None
        count = round((self.high - self.low) / self.step)
        return tuple(round(self.low + i * self.step, 12) for i in range(count + 1))


@dataclass(frozen=True)
class SearchSettings:
    algorithm: str
    seed: int
    num_samples: int
    max_concurrent: int
    points_to_evaluate: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True)
class SchedulerSettings:
    kind: str
    grace_period: int
    reduction_factor: float


@dataclass(frozen=True)
class Resources:
    cpus: float
    gpus: float


def _same(a: Any, b: Any) -> bool:
    """Equality that keeps True apart from 1."""
    return a == b and isinstance(a, bool) == isinstance(b, bool)


def _on_step(distance: float, step: float) -> bool:
    ratio = distance / step
    return math.isclose(ratio, round(ratio), abs_tol=1e-9)


def _plain(when: Mapping[str, Sequence[Any]]) -> dict[str, list[Any]]:
    """`when` as the YAML wrote it, for messages."""
    return {key: list(values) for key, values in when.items()}


def condition_holds(when: Mapping[str, Sequence[Any]], values: Mapping[str, Any]) -> bool:
    """Whether every `when` entry matches the trial's current config values."""
    return all(any(_same(values[key], v) for v in wanted) for key, wanted in when.items())


# --- error helpers -----------------------------------------------------------------


def _invalid(source: str, path: str, value: Any, reason: str) -> UsageError:
    where = f"{source}: {path}: " if path else f"{source}: "
    return UsageError(f"{where}{value!r} is invalid: {reason}")


def _rule(exc: InvalidValue) -> str:
    """An InvalidValue's rule with 'it' replaced by the key: 'alpha must lie in (0, 1]'."""
    return f"{exc.key} {exc.rule[3:]}" if exc.rule.startswith("it ") else exc.rule


def _check_keys(
    source: str, path: str, mapping: Mapping, allowed: Sequence[str], required: Sequence[str] = ()
) -> None:
    prefix = f"{path}." if path else ""
    for key in mapping:
        if key not in allowed:
            hint = suggest_key(str(key), allowed)
            raise UsageError(f"{source}: {prefix}{key}: unknown key{hint}")
    for key in required:
        if key not in mapping:
            raise UsageError(f"{source}: {prefix}{key}: missing (required)")


def _mapping(source: str, path: str, value: Any) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _invalid(source, path, value, "expected a mapping")
    return value


def _int(source: str, path: str, value: Any, *, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid(source, path, value, "expected an integer")
    if minimum is not None and value < minimum:
        raise _invalid(source, path, value, f"it must be >= {minimum}")
    return value


def _number(source: str, path: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        hint = ""
        if isinstance(value, str) and re.fullmatch(r"[-+]?\d+(\.\d*)?[eE][-+]?\d+", value):
            hint = f" (YAML reads {value} as text: write it with a dot, e.g. 1.0e-4)"
        raise _invalid(source, path, value, "expected a finite number" + hint)
    return value


def _bool(source: str, path: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _invalid(source, path, value, "expected true or false")
    return value


def _one_of(source: str, path: str, value: Any, allowed: Sequence[str]) -> str:
    if value not in allowed:
        hint = suggest_key(value, allowed) if isinstance(value, str) else ""
        raise _invalid(source, path, value, f"it must be one of {', '.join(allowed)}{hint}")
    return value


# --- overrides ---------------------------------------------------------------------


def _allowed_keys(data: Mapping, prefix: list[str], leaf: bool) -> Sequence[str] | None:
    """Which keys `--set` may name under `prefix` (None: nothing is addressable there)."""
    if not prefix:
        return TOP_KEYS
    if prefix == ["parameters"] and not leaf:  # going deeper needs an existing parameter
        params = data.get("parameters")
        return tuple(params) if isinstance(params, dict) else ()
    if len(prefix) == 1:
        return SECTION_KEYS.get(prefix[0])
    if prefix[0] == "parameters" and len(prefix) == 2:
        return PARAM_KEYS
    if prefix[0] == "parameters" and len(prefix) == 3 and prefix[2] == "when":
        return tuple(FIELDS)
    return None


def apply_overrides(raw: Mapping, overrides: Sequence[str]) -> dict:
    """A copy of `raw` with each 'a.b.c=value' set (value typed by YAML rules)."""
    data = copy.deepcopy(dict(raw))
    for text in overrides:
        key, value = parse_override(text)
        parts = key.split(".")
        node = data
        for depth, part in enumerate(parts):
            leaf = depth == len(parts) - 1
            allowed = _allowed_keys(data, parts[:depth], leaf)
            under = ".".join(parts[:depth])
            if allowed is None:
                raise UsageError(f"--set {key}: '{under}' has no keys that --set can change")
            if part not in allowed:
                where = f" under '{under}'" if under else ""
                raise UsageError(
                    f"--set {key}: unknown key '{part}'{where}{suggest_key(part, allowed)}"
                )
            if leaf:
                node[part] = value
            else:
                if not isinstance(node.get(part), dict):
                    node[part] = {}
                node = node[part]
    return data


# --- sections ----------------------------------------------------------------------


def _base(source: str, value: Any) -> dict[str, Any]:
    base = _mapping(source, "base", value)
    _check_keys(source, "base", base, FIELDS)
    if "seed" in base:
        raise _invalid(source, "base.seed", base["seed"], "seeds are set by repeats.seeds")
    base = {key: coerce_value(key, v, source=f"{source}: base.{key}") for key, v in base.items()}
    try:  # the base alone must make a valid config
        TrialConfig(**base)
    except InvalidValue as exc:
        raise _invalid(source, f"base.{exc.key}", exc.value, _rule(exc)) from None
    return base


def _metric(source: str, value: Any) -> tuple[str, str]:
    metric = _mapping(source, "metric", value)
    _check_keys(source, "metric", metric, SECTION_KEYS["metric"], required=("name",))
    name = metric["name"]
    if name not in SEARCHABLE_METRICS:
        hint = suggest_key(name, SEARCHABLE_METRICS) if isinstance(name, str) else ""
        reason = f"a search can optimise only {', '.join(SEARCHABLE_METRICS)}"
        raise _invalid(source, "metric.name", name, reason + hint)
    mode = _one_of(source, "metric.mode", metric.get("mode", MODE_OF[name]), MODES)
    return name, mode


def _range(source: str, path: str, name: str, kind: str, spec: dict) -> dict[str, Any]:
    """low/high/step/log of a float or int parameter, checked for emptiness and step sanity."""
    if field_kind(name) is not (float if kind == "float" else int):
        other = "int" if kind == "float" else "float"
        reason = f"{name} holds {field_kind(name).__name__} values: use type {other} or categorical"
        raise _invalid(source, f"{path}.type", kind, reason)
    _check_keys(source, path, spec, PARAM_KEYS, required=("low", "high"))
    if "choices" in spec:
        reason = f"a {kind} parameter has no choices"
        raise _invalid(source, f"{path}.choices", spec["choices"], reason)
    check = _number if kind == "float" else _int
    low = check(source, f"{path}.low", spec["low"])
    high = check(source, f"{path}.high", spec["high"])
    log = _bool(source, f"{path}.log", spec.get("log", False))
    if kind == "float" and (low >= high):
        raise _invalid(source, f"{path}.high", high, f"it must be > low ({low})")
    if kind == "int" and low > high:
        raise _invalid(source, f"{path}.high", high, f"it must be >= low ({low})")
    if log and low <= 0:
        raise _invalid(source, f"{path}.low", low, "a log range needs low > 0")
    step = spec.get("step")
    if step is None and kind == "int":
        step = 1
    if step is not None:
        step = check(source, f"{path}.step", step)
        _check_step(source, f"{path}.step", step, low=low, high=high, log=log, kind=kind)
    if kind == "float":
        return {"low": float(low), "high": float(high), "step": step and float(step), "log": log}
    return {"low": low, "high": high, "step": step, "log": log}


def _check_step(
    source: str, path: str, step: float, *, low: float, high: float, log: bool, kind: str
) -> None:
    if step <= 0:
        raise _invalid(source, path, step, "it must be > 0")
    if log and (kind == "float" or step != 1):
        raise _invalid(source, path, step, "Optuna cannot combine step with log")
    if high > low and step > high - low:
        raise _invalid(source, path, step, f"it is larger than the range [{low}, {high}]")
    if not _on_step(high - low, step):
        raise _invalid(source, path, step, f"high - low ({high} - {low}) must be a multiple of it")


def _choices(source: str, path: str, name: str, spec: dict) -> tuple[Any, ...]:
    extra = [key for key in ("low", "high", "step", "log") if key in spec]
    if extra:
        raise _invalid(source, f"{path}.{extra[0]}", spec[extra[0]], "a categorical takes choices")
    _check_keys(source, path, spec, PARAM_KEYS, required=("choices",))
    choices = spec["choices"]
    if not isinstance(choices, list) or not choices:
        raise _invalid(source, f"{path}.choices", choices, "expected a non-empty list")
    typed = []
    for i, choice in enumerate(choices):
        value = coerce_value(name, choice, source=f"{source}: {path}.choices[{i}]")
        if any(_same(value, seen) for seen in typed):
            raise _invalid(source, f"{path}.choices[{i}]", choice, "it is listed twice")
        typed.append(value)
    return tuple(typed)


def _fixed(name: str, base: Mapping[str, Any]) -> Any:
    return base.get(name, DEFAULTS[name])


def _when(
    source: str, path: str, value: Any, *, declared: Sequence[str], earlier: dict, base: dict
) -> dict[str, tuple[Any, ...]]:
    """Conditions on earlier parameters or fixed keys, each able to hold."""
    name = path.rsplit(".", 1)[-1]
    when = _mapping(source, f"{path}.when", value)
    _check_keys(source, f"{path}.when", when, FIELDS)
    parsed = {}
    for ref, wanted in when.items():
        rpath = f"{path}.when.{ref}"
        if ref == name:
            raise _invalid(source, rpath, wanted, "a parameter cannot depend on itself")
        if ref in declared and ref not in earlier:
            reason = f"'{ref}' is not declared before '{name}' (conditions name earlier parameters)"
            raise _invalid(source, rpath, wanted, reason)
        items = wanted if isinstance(wanted, list) else [wanted]
        if not items:
            raise _invalid(source, rpath, wanted, "expected a value or a non-empty list")
        values = tuple(coerce_value(ref, v, source=f"{source}: {rpath}") for v in items)
        if ref in earlier:
            other = earlier[ref]
            for v in values:  # a conditional parameter may also keep its fixed value
                if not (other.contains(v) or (other.when and _same(v, _fixed(ref, base)))):
                    reason = f"{ref} never takes it (parameters.{ref}: {other.describe()})"
                    raise _invalid(source, rpath, v, reason)
        elif not any(_same(_fixed(ref, base), v) for v in values):
            reason = f"{ref} is fixed at {_fixed(ref, base)!r} (base or default), so it never holds"
            raise _invalid(source, rpath, wanted, reason)
        parsed[ref] = values
    return parsed


def _check_values(source: str, path: str, param: Parameter, base: dict, earlier: dict) -> None:
    """Build a TrialConfig at the parameter's low, high or each choice (its conditions met)."""
    context = dict(base)
    for ref, wanted in param.when.items():
        if ref in earlier:
            context[ref] = next((v for v in wanted if earlier[ref].contains(v)), wanted[0])
    probes = (
        [(f"{path}.choices[{i}]", c) for i, c in enumerate(param.choices)]
        if param.kind == "categorical"
        else [(f"{path}.low", param.low), (f"{path}.high", param.high)]
    )
    for probe_path, value in probes:
        try:
            TrialConfig(**{**context, param.name: value})
        except InvalidValue as exc:
            reason = _rule(exc)
            if exc.key != param.name:
                reason = f"with {param.name}={value!r}, {exc.key}={exc.value!r} breaks: {reason}"
            raise _invalid(source, probe_path, value, reason) from None


def _parameters(source: str, value: Any, base: dict) -> tuple[Parameter, ...]:
    specs = _mapping(source, "parameters", value)
    if not specs:
        raise _invalid(source, "parameters", value, "declare at least one parameter")
    _check_keys(source, "parameters", specs, FIELDS)
    earlier: dict[str, Parameter] = {}
    for name, spec in specs.items():
        path = f"parameters.{name}"
        if name == "seed":
            raise _invalid(source, path, spec, "seeds are set by repeats.seeds")
        spec = _mapping(source, path, spec)
        _check_keys(source, path, spec, PARAM_KEYS, required=("type",))
        kind = _one_of(source, f"{path}.type", spec["type"], PARAM_TYPES)
        when = _when(
            source, path, spec.get("when"), declared=list(specs), earlier=earlier, base=base
        )
        if name in base and not when:
            reason = (
                f"{name} is also fixed in base ({name}: {base[name]!r}); keep one, or give the "
                "parameter a `when` so that the base value is its fallback"
            )
            raise _invalid(source, path, name, reason)
        if kind == "categorical":
            param = Parameter(name, kind, choices=_choices(source, path, name, spec), when=when)
        else:
            param = Parameter(name, kind, when=when, **_range(source, path, name, kind, spec))
        _check_values(source, path, param, base, earlier)
        earlier[name] = param
    return tuple(earlier.values())


def _points(
    source: str, value: Any, params: tuple[Parameter, ...], base: dict
) -> tuple[dict[str, Any], ...]:
    """Configurations to try first: only declared parameters, within their ranges."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _invalid(source, "search.points_to_evaluate", value, "expected a list of mappings")
    by_name = {p.name: p for p in params}
    points = []
    for i, point in enumerate(value):
        path = f"search.points_to_evaluate[{i}]"
        if not isinstance(point, dict) or not point:
            raise _invalid(source, path, point, "expected a non-empty mapping of parameters")
        typed = {}
        for key, v in point.items():
            if key not in by_name:
                hint = suggest_key(str(key), by_name)
                raise UsageError(f"{source}: {path}.{key}: not a declared parameter{hint}")
            typed[key] = coerce_value(key, v, source=f"{source}: {path}.{key}")
            if not by_name[key].contains(typed[key]):
                reason = f"outside parameters.{key} ({by_name[key].describe()})"
                raise _invalid(source, f"{path}.{key}", v, reason)
        values = {**DEFAULTS, **base, **typed}
        for key in typed:
            when = by_name[key].when
            known = all(ref in typed or ref not in by_name for ref in when)
            if known and not condition_holds(when, values):
                raise _invalid(
                    source,
                    f"{path}.{key}",
                    point[key],
                    f"{key} is not sampled here: its `when` ({_plain(when)}) does not hold",
                )
        points.append(typed)
    return tuple(points)


def _grid_size(source: str, params: tuple[Parameter, ...]) -> int:
    size = 1
    for p in params:
        if p.when:
            reason = "grid search cannot use `when` (it would repeat configurations)"
            raise _invalid(source, f"parameters.{p.name}.when", _plain(p.when), reason)
        grid = p.grid()
        if grid is None:
            reason = "grid search needs a finite grid: give this float a step, or use choices"
            raise _invalid(source, f"parameters.{p.name}.step", None, reason)
        size *= len(grid)
    return size


def _search(source: str, value: Any, params: tuple[Parameter, ...], base: dict) -> SearchSettings:
    search = _mapping(source, "search", value)
    _check_keys(source, "search", search, SECTION_KEYS["search"])
    algorithm = _one_of(source, "search.algorithm", search.get("algorithm", "tpe"), ALGORITHMS)
    if algorithm == "cmaes" and importlib.util.find_spec("cmaes") is None:
        reason = "Optuna's CMA-ES sampler needs the cmaes package (pip install cmaes)"
        raise _invalid(source, "search.algorithm", algorithm, reason)
    seed = _int(source, "search.seed", search.get("seed", 0), minimum=0)
    max_concurrent = _int(
        source, "search.max_concurrent", search.get("max_concurrent", 1), minimum=1
    )
    points = _points(source, search.get("points_to_evaluate"), params, base)
    if algorithm == "grid":
        size = _grid_size(source, params)
        if points:
            reason = "grid search runs every grid point; these would repeat some"
            raise _invalid(
                source, "search.points_to_evaluate", search["points_to_evaluate"], reason
            )
        num_samples = _int(source, "search.num_samples", search.get("num_samples", size), minimum=1)
        if num_samples > size:
            reason = f"the grid has only {size} points"
            raise _invalid(source, "search.num_samples", num_samples, reason)
    else:
        num_samples = search.get("num_samples", DEFAULT_NUM_SAMPLES)
        num_samples = _int(source, "search.num_samples", num_samples, minimum=1)
    if len(points) > num_samples:
        reason = (
            f"only the first num_samples ({num_samples}) of these {len(points)} points would run"
        )
        raise _invalid(source, "search.points_to_evaluate", search["points_to_evaluate"], reason)
    return SearchSettings(algorithm, seed, num_samples, max_concurrent, points)


def _scheduler(source: str, value: Any) -> SchedulerSettings:
    scheduler = _mapping(source, "scheduler", value)
    _check_keys(source, "scheduler", scheduler, SECTION_KEYS["scheduler"])
    kind = _one_of(source, "scheduler.kind", scheduler.get("kind") or "none", SCHEDULERS)
    grace = _int(source, "scheduler.grace_period", scheduler.get("grace_period", 1), minimum=1)
    factor = _number(source, "scheduler.reduction_factor", scheduler.get("reduction_factor", 2))
    if factor <= 1:
        raise _invalid(source, "scheduler.reduction_factor", factor, "it must be > 1")
    return SchedulerSettings(kind, grace, float(factor))


def _repeats(source: str, value: Any) -> tuple[int, ...]:
    path, seeds = "repeats", value
    if isinstance(value, dict):
        _check_keys(source, "repeats", value, SECTION_KEYS["repeats"], required=("seeds",))
        path, seeds = "repeats.seeds", value["seeds"]
    if seeds is None:
        return PAPER_SEEDS[:1]
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        if not 1 <= seeds <= len(PAPER_SEEDS):
            reason = (
                f"a count takes the first n paper seeds, so n must lie in 1..{len(PAPER_SEEDS)}"
            )
            raise _invalid(source, path, seeds, reason)
        return PAPER_SEEDS[:seeds]
    if not isinstance(seeds, list) or not seeds:
        raise _invalid(source, path, seeds, "expected a non-empty list of seeds or a count 1..5")
    for i, seed in enumerate(seeds):
        _int(source, f"{path}[{i}]", seed, minimum=0)
        if seed in seeds[:i]:
            raise _invalid(source, f"{path}[{i}]", seed, "duplicate seed")
    return tuple(seeds)


def _resources(source: str, value: Any) -> Resources:
    resources = _mapping(source, "resources", value)
    _check_keys(source, "resources", resources, SECTION_KEYS["resources"])
    cpus = _number(source, "resources.cpus", resources.get("cpus", 1))
    gpus = _number(source, "resources.gpus", resources.get("gpus", 0))
    if cpus <= 0:
        raise _invalid(source, "resources.cpus", cpus, "it must be > 0")
    if gpus < 0:
        raise _invalid(source, "resources.gpus", gpus, "it must be >= 0")
    return Resources(float(cpus), float(gpus))


def parse_space(raw: Any, source: str) -> dict[str, Any]:
    """Validate a resolved space dict; the SearchSpace fields (all but source and raw)."""
    if raw is None:
        raise UsageError(f"{source}: the file is empty")
    data = _mapping(source, "", raw)
    _check_keys(source, "", data, TOP_KEYS, required=REQUIRED_TOP_KEYS)
    name = data["name"]
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise _invalid(source, "name", name, "use lower-case letters, digits, '_' and '-'")
    description = data["description"]
    if not isinstance(description, str) or not description.strip():
        raise _invalid(source, "description", description, "say why the ranges are what they are")
    metric, mode = _metric(source, data["metric"])
    base = _base(source, data.get("base"))
    parameters = _parameters(source, data["parameters"], base)
    return {
        "name": name,
        "description": " ".join(description.split()),
        "metric": metric,
        "mode": mode,
        "base": base,
        "parameters": parameters,
        "search": _search(source, data.get("search"), parameters, base),
        "scheduler": _scheduler(source, data.get("scheduler")),
        "seeds": _repeats(source, data.get("repeats")),
        "resources": _resources(source, data.get("resources")),
    }
