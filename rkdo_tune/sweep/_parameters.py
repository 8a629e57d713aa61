"""The `parameters` section of a search space: searched fields, their ranges and conditions.

Range and choice rules of config values are not restated here: they come from
building a `TrialConfig` at each parameter's ends (see `_check_values`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from rkdo_tune.config import FIELDS, ConfigValue, TrialConfig, coerce_value, field_kind
from rkdo_tune.errors import InvalidValue
from rkdo_tune.sweep._checks import (
    PARAM_KEYS,
    check_keys,
    check_not_set_by_sweep,
    config_rule,
    invalid,
    read_bool,
    read_choice,
    read_int,
    read_mapping,
    read_number,
)

PARAM_TYPES = ("float", "int", "categorical")
Condition = Mapping[str, tuple[ConfigValue, ...]]  # field name -> the values it must have


@dataclass(frozen=True)
class Parameter:
    """One searched TrialConfig field. `when` maps a field name to the values it must have."""

    name: str
    kind: str  # float | int | categorical
    low: float | int | None = None
    high: float | int | None = None
    step: float | int | None = None
    log: bool = False
    choices: tuple[ConfigValue, ...] = ()
    when: Condition = field(default_factory=dict)

    def contains(self, value: ConfigValue) -> bool:
        """Whether the parameter can take `value` (a choice, or on its range and step)."""
        if self.kind == "categorical":
            return any(same(value, choice) for choice in self.choices)
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

    def grid_size(self) -> int | None:
        """How many values `grid()` holds, without listing them; None for a float without a step."""
        if self.kind == "categorical":
            return len(self.choices)
        if self.step is None:
            return None if self.kind == "float" else self.high - self.low + 1
        if self.kind == "int":
            return (self.high - self.low) // self.step + 1
        return round((self.high - self.low) / self.step) + 1

    def grid(self) -> tuple[ConfigValue, ...] | None:
        """Every value of a finite parameter, or None for a float without a step."""
        if self.kind == "categorical":
            return self.choices
        if self.kind == "int":
            return tuple(range(self.low, self.high + 1, self.step))
        if self.step is None:
            return None
        count = round((self.high - self.low) / self.step)
        return tuple(round(self.low + i * self.step, 12) for i in range(count + 1))


def same(a: object, b: object) -> bool:
    """Equality that keeps True apart from 1."""
    return a == b and isinstance(a, bool) == isinstance(b, bool)


def _on_step(distance: float, step: float) -> bool:
    ratio = distance / step
    return math.isfinite(ratio) and math.isclose(ratio, round(ratio), abs_tol=1e-9)


def plain(when: Condition) -> dict[str, list[ConfigValue]]:
    """`when` as the YAML wrote it, for messages."""
    return {key: list(values) for key, values in when.items()}


def condition_holds(when: Condition, values: Mapping[str, ConfigValue]) -> bool:
    """Whether every `when` entry matches the trial's current config values."""
    return all(any(same(values[key], v) for v in wanted) for key, wanted in when.items())


def _range(
    source: str, path: str, name: str, kind: str, spec: dict
) -> dict[str, float | bool | None]:
    """low/high/step/log of a float or int parameter, checked for emptiness and step sanity."""
    if field_kind(name) is not (float if kind == "float" else int):
        other = "int" if kind == "float" else "float"
        reason = f"{name} holds {field_kind(name).__name__} values: use type {other} or categorical"
        raise invalid(source, f"{path}.type", kind, reason)
    check_keys(source, path, spec, PARAM_KEYS, required=("low", "high"))
    if "choices" in spec:
        reason = f"a {kind} parameter has no choices"
        raise invalid(source, f"{path}.choices", spec["choices"], reason)
    check = read_number if kind == "float" else read_int
    low = check(source, f"{path}.low", spec["low"])
    high = check(source, f"{path}.high", spec["high"])
    log = read_bool(source, f"{path}.log", spec.get("log", False))
    if kind == "float" and (low >= high):
        raise invalid(source, f"{path}.high", high, f"it must be > low ({low})")
    if kind == "int" and low > high:
        raise invalid(source, f"{path}.high", high, f"it must be >= low ({low})")
    if log and low <= 0:
        raise invalid(source, f"{path}.low", low, "a log range needs low > 0")
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
        raise invalid(source, path, step, "it must be > 0")
    if log and (kind == "float" or step != 1):
        raise invalid(source, path, step, "Optuna cannot combine step with log")
    if high > low and step > high - low:
        raise invalid(source, path, step, f"it is larger than the range [{low}, {high}]")
    if not _on_step(high - low, step):
        raise invalid(source, path, step, f"high - low ({high} - {low}) must be a multiple of it")


def _choices(source: str, path: str, name: str, spec: dict) -> tuple[ConfigValue, ...]:
    extra = [key for key in ("low", "high", "step", "log") if key in spec]
    if extra:
        raise invalid(source, f"{path}.{extra[0]}", spec[extra[0]], "a categorical takes choices")
    check_keys(source, path, spec, PARAM_KEYS, required=("choices",))
    choices = spec["choices"]
    if not isinstance(choices, list) or not choices:
        raise invalid(source, f"{path}.choices", choices, "expected a non-empty list")
    typed = []
    for i, choice in enumerate(choices):
        value = coerce_value(name, choice, source=f"{source}: {path}.choices[{i}]")
        if any(same(value, seen) for seen in typed):
            raise invalid(source, f"{path}.choices[{i}]", choice, "it is listed twice")
        typed.append(value)
    return tuple(typed)


def _when(
    source: str,
    path: str,
    value: object,
    *,
    declared: Sequence[str],
    earlier: Mapping[str, Parameter],
    base_config: TrialConfig,
) -> Condition:
    """Conditions on earlier parameters or fixed keys, each able to hold."""
    name = path.rsplit(".", 1)[-1]
    when = read_mapping(source, f"{path}.when", value)
    check_keys(source, f"{path}.when", when, FIELDS)
    parsed = {}
    for ref, wanted in when.items():
        rpath = f"{path}.when.{ref}"
        if ref == name:
            raise invalid(source, rpath, wanted, "a parameter cannot depend on itself")
        if ref in declared and ref not in earlier:
            reason = f"'{ref}' is not declared before '{name}' (conditions name earlier parameters)"
            raise invalid(source, rpath, wanted, reason)
        items = wanted if isinstance(wanted, list) else [wanted]
        if not items:
            raise invalid(source, rpath, wanted, "expected a value or a non-empty list")
        values = tuple(coerce_value(ref, v, source=f"{source}: {rpath}") for v in items)
        fixed = getattr(base_config, ref)
        if ref in earlier:
            other = earlier[ref]
            for v in values:  # a conditional parameter may also keep its fixed value
                if not (other.contains(v) or (other.when and same(v, fixed))):
                    reason = f"{ref} never takes it (parameters.{ref}: {other.describe()})"
                    raise invalid(source, rpath, v, reason)
        elif not any(same(fixed, v) for v in values):
            reason = f"{ref} is fixed at {fixed!r} (base or default), so it never holds"
            raise invalid(source, rpath, wanted, reason)
        parsed[ref] = values
    return parsed


def _check_values(
    source: str,
    path: str,
    param: Parameter,
    base_config: TrialConfig,
    earlier: Mapping[str, Parameter],
) -> None:
    """Build a TrialConfig at the parameter's low, high or each choice (its conditions met)."""
    context = {}
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
            dataclasses.replace(base_config, **{**context, param.name: value})
        except InvalidValue as exc:
            reason = config_rule(exc)
            if exc.key != param.name:
                reason = f"with {param.name}={value!r}, {exc.key}={exc.value!r} breaks: {reason}"
            raise invalid(source, probe_path, value, reason) from None


def parse_parameters(
    source: str, value: object, base: Mapping[str, ConfigValue], base_config: TrialConfig
) -> tuple[Parameter, ...]:
    """The declared parameters, in order; `base` holds the keys the file fixes itself."""
    specs = read_mapping(source, "parameters", value)
    if not specs:
        raise invalid(source, "parameters", value, "declare at least one parameter")
    check_keys(source, "parameters", specs, FIELDS)
    check_not_set_by_sweep(source, "parameters", specs)
    earlier: dict[str, Parameter] = {}
    for name, spec in specs.items():
        path = f"parameters.{name}"
        spec = read_mapping(source, path, spec)
        check_keys(source, path, spec, PARAM_KEYS, required=("type",))
        kind = read_choice(source, f"{path}.type", spec["type"], PARAM_TYPES)
        when = _when(
            source,
            path,
            spec.get("when"),
            declared=list(specs),
            earlier=earlier,
            base_config=base_config,
        )
        if name in base and not when:
            reason = (
                f"{name} is also fixed in base ({name}: {base[name]!r}); keep one, or give the "
                "parameter a `when` so that the base value is its fallback"
            )
            raise invalid(source, path, name, reason)
        if kind == "categorical":
            param = Parameter(name, kind, choices=_choices(source, path, name, spec), when=when)
        else:
            param = Parameter(name, kind, when=when, **_range(source, path, name, kind, spec))
        _check_values(source, path, param, base_config, earlier)
        earlier[name] = param
    return tuple(earlier.values())
