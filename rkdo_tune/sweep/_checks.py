"""The search-space file's key tables, its one-line errors and the readers of its scalars.

Every check raises one `UsageError` line of the form
``<file>: <key.path>: <value> is invalid: <reason>`` (or ``unknown key`` /
``missing``), so a bad space fails before anything is started.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Mapping, Sequence

from rkdo_tune.config import FIELDS, suggest_key
from rkdo_tune.errors import InvalidValue, UsageError

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
    "baseline",
    "confirm",
    "verdict",
    "budgets",
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
    "baseline": (*FIELDS, "tune"),
    "confirm": ("top", "seeds"),
    "verdict": ("metric", "margin"),
    "budgets": ("epochs",),
    "parameters": tuple(FIELDS),
}


# TrialConfig fields the sweep sets for every run, so that no section of a space may:
# the seed from `repeats.seeds`, the scored split from the stage (SearchSpace.eval_split).
SET_BY_SWEEP = {
    "seed": "seeds are set by repeats.seeds",
    "eval_split": "the sweep sets it: a space with `confirm` searches on the validation "
    "split and confirms on test, any other scores test",
}


def check_not_set_by_sweep(source: str, section: str, mapping: Mapping[object, object]) -> None:
    """Refuse a key of `mapping` (section `section` of a space) that SET_BY_SWEEP holds."""
    for key, reason in SET_BY_SWEEP.items():
        if key in mapping:
            raise invalid(source, f"{section}.{key}", mapping[key], reason)


def invalid(source: str, path: str, value: object, reason: str) -> UsageError:
    """The error ``<source>: <path>: <value> is invalid: <reason>``."""
    where = f"{source}: {path}: " if path else f"{source}: "
    return UsageError(f"{where}{value!r} is invalid: {reason}")


def config_rule(exc: InvalidValue) -> str:
    """A config rule with 'it' replaced by the key: 'alpha must lie in (0, 1]'."""
    return f"{exc.key} {exc.rule[3:]}" if exc.rule.startswith("it ") else exc.rule


def check_keys(
    source: str,
    path: str,
    mapping: Mapping[object, object],
    allowed: Sequence[str],
    required: Sequence[str] = (),
) -> None:
    prefix = f"{path}." if path else ""
    for key in mapping:
        if key not in allowed:
            hint = suggest_key(str(key), allowed)
            raise UsageError(f"{source}: {prefix}{key}: unknown key{hint}")
    for key in required:
        if key not in mapping:
            raise UsageError(f"{source}: {prefix}{key}: missing (required)")


def read_mapping(source: str, path: str, value: object) -> dict:
    """`value` as a YAML mapping (None reads as empty)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise invalid(source, path, value, "expected a mapping")
    return value


def read_int(source: str, path: str, value: object, *, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(source, path, value, "expected an integer")
    if minimum is not None and value < minimum:
        raise invalid(source, path, value, f"it must be >= {minimum}")
    return value


def read_number(source: str, path: str, value: object) -> float:
    """A finite int or float (returned as given)."""
    if isinstance(value, int) and abs(value) > sys.float_info.max:  # isfinite() would overflow
        raise invalid(source, path, value, "too large: expected a finite number")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        hint = ""
        if isinstance(value, str) and re.fullmatch(r"[-+]?\d+(\.\d*)?[eE][-+]?\d+", value):
            hint = f" (YAML reads {value} as text: write it with a dot, e.g. 1.0e-4)"
        raise invalid(source, path, value, "expected a finite number" + hint)
    return value


def read_bool(source: str, path: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise invalid(source, path, value, "expected true or false")
    return value


def read_choice(source: str, path: str, value: object, allowed: Sequence[str]) -> str:
    if value not in allowed:
        hint = suggest_key(value, allowed) if isinstance(value, str) else ""
        raise invalid(source, path, value, f"it must be one of {', '.join(allowed)}{hint}")
    return value
