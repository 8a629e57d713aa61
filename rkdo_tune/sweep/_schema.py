"""The search-space YAML schema: load-time validation of every section.

Every check raises one `UsageError` line of the form
``<file>: <key.path>: <value> is invalid: <reason>`` (or ``unknown key`` /
``missing``), so a bad space fails before anything is started. The key tables
and error helpers are in `_checks`, `--set` in `_overrides`, the `parameters`
section in `_parameters`. Range and choice rules of config values are not
restated here: they come from building a `TrialConfig`.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import re
from dataclasses import dataclass
from typing import TypedDict

from rkdo_tune.config import FIELDS, ConfigValue, TrialConfig, coerce_value, suggest_key
from rkdo_tune.errors import InvalidValue, UsageError
from rkdo_tune.metrics import CURVE_METRICS, EVAL_METRICS, MODE_OF, SEARCHABLE_METRICS
from rkdo_tune.sweep._budgets import parse_budgets
from rkdo_tune.sweep._checks import (
    PARAM_KEYS,
    REQUIRED_TOP_KEYS,
    SECTION_KEYS,
    TOP_KEYS,
    check_keys,
    check_not_set_by_sweep,
    config_rule,
    invalid,
    read_choice,
    read_int,
    read_mapping,
    read_number,
)
from rkdo_tune.sweep._overrides import apply_overrides
from rkdo_tune.sweep._parameters import (
    Parameter,
    condition_holds,
    parse_parameters,
    plain,
)
from rkdo_tune.sweep._study import (
    ConfirmSettings,
    VerdictSettings,
    check_tuned_baseline,
    parse_baseline,
    parse_baseline_search,
    parse_confirm,
    parse_verdict,
)

__all__ = [
    "PAPER_SEEDS",
    "PARAM_KEYS",
    "SECTION_KEYS",
    "TOP_KEYS",
    "ConfirmSettings",
    "Objective",
    "Parameter",
    "Resources",
    "SchedulerSettings",
    "SearchSettings",
    "SpaceFields",
    "VerdictSettings",
    "apply_overrides",
    "condition_holds",
    "parse_space",
]

PAPER_SEEDS = (42, 123, 456, 789, 101)
ALGORITHMS = ("tpe", "cmaes", "random", "grid", "qmc")
SCHEDULERS = ("none", "asha", "median")
MODES = ("max", "min")
DEFAULT_NUM_SAMPLES = 10
MAX_GRID_POINTS = 10_000  # values of one parameter in a grid search
_NAME = re.compile(r"[a-z0-9_-]+")
# A run can monitor an evaluation score, not one read off its own curve (the AUC).
MONITORABLE = tuple(k for k in EVAL_METRICS if k not in CURVE_METRICS)


@dataclass(frozen=True)
class SearchSettings:
    algorithm: str
    seed: int
    num_samples: int
    max_concurrent: int
    points_to_evaluate: tuple[dict[str, ConfigValue], ...] = ()


@dataclass(frozen=True)
class Objective:
    """One metric a search optimises, and its direction (max or min)."""

    name: str
    mode: str


@dataclass(frozen=True)
class SchedulerSettings:
    kind: str
    grace_period: int
    reduction_factor: float


@dataclass(frozen=True)
class Resources:
    cpus: float
    gpus: float


class SpaceFields(TypedDict):
    """What `parse_space` reads from a file: the SearchSpace fields but its source and raw."""

    name: str
    description: str
    metric: str
    mode: str
    objectives: tuple[Objective, ...]
    base: dict[str, ConfigValue]
    base_config: TrialConfig
    parameters: tuple[Parameter, ...]
    search: SearchSettings
    scheduler: SchedulerSettings
    seeds: tuple[int, ...]
    resources: Resources
    baseline: dict[str, ConfigValue] | None
    baseline_search: tuple[Parameter, ...]
    confirm: ConfirmSettings | None
    verdict: VerdictSettings
    budget_epochs: tuple[int, ...]


def _base(source: str, value: object) -> tuple[dict[str, ConfigValue], TrialConfig]:
    """The keys the file fixes, and the TrialConfig they make over the defaults."""
    base = read_mapping(source, "base", value)
    check_keys(source, "base", base, FIELDS)
    check_not_set_by_sweep(source, "base", base)
    base = {key: coerce_value(key, v, source=f"{source}: base.{key}") for key, v in base.items()}
    try:  # the base alone must make a valid config
        return base, TrialConfig(**base)
    except InvalidValue as exc:
        raise invalid(source, f"base.{exc.key}", exc.value, config_rule(exc)) from None


def _monitored(
    base: dict[str, ConfigValue], base_config: TrialConfig, *, metric: str
) -> tuple[dict[str, ConfigValue], TrialConfig]:
    """Each run monitors the metric the space searches (its peak, overspecialisation and
    steps-to-target, and what a scheduler sees mid-run), unless `base` names another."""
    if "monitor_metric" in base or metric not in MONITORABLE:
        return base, base_config
    if metric == base_config.monitor_metric:
        return base, base_config
    monitored = dataclasses.replace(base_config, monitor_metric=metric)
    return {**base, "monitor_metric": metric}, monitored


def _objective(source: str, path: str, value: object) -> Objective:
    metric = read_mapping(source, path, value)
    check_keys(source, path, metric, SECTION_KEYS["metric"], required=("name",))
    name = metric["name"]
    if name not in SEARCHABLE_METRICS:
        hint = suggest_key(name, SEARCHABLE_METRICS) if isinstance(name, str) else ""
        reason = f"a search can optimise only {', '.join(SEARCHABLE_METRICS)}"
        raise invalid(source, f"{path}.name", name, reason + hint)
    mode = read_choice(source, f"{path}.mode", metric.get("mode", MODE_OF[name]), MODES)
    return Objective(name, mode)


def _objectives(source: str, value: object) -> tuple[Objective, ...]:
    """`metric`: one objective (a mapping), or a list of them for a multi-objective search;
    the first is the primary one (what ranks, confirms and judges)."""
    if not isinstance(value, list):
        return (_objective(source, "metric", value),)
    if not value:
        raise invalid(source, "metric", value, "expected {name, mode} or a non-empty list of them")
    objectives = tuple(_objective(source, f"metric[{i}]", v) for i, v in enumerate(value))
    for i, objective in enumerate(objectives):
        if objective.name in (o.name for o in objectives[:i]):
            raise invalid(source, f"metric[{i}].name", objective.name, "duplicate objective")
    return objectives


def _check_objectives(
    source: str,
    objectives: tuple[Objective, ...],
    search: SearchSettings,
    scheduler: SchedulerSettings,
) -> None:
    """What a search over several objectives cannot use (Ray 2.60, Optuna 5)."""
    if len(objectives) < 2:
        return
    several = f"metric lists {len(objectives)} objectives"
    if scheduler.kind != "none":  # ASHA and the median rule stop trials on a single metric
        reason = (
            f"{several}: early stopping ranks trials on one metric and Optuna's "
            "multi-objective study takes no intermediate values; use scheduler.kind none"
        )
        raise invalid(source, "scheduler.kind", scheduler.kind, reason)
    if search.algorithm == "cmaes":
        reason = f"{several}, and Optuna's CmaEsSampler optimises one: use tpe, random, qmc or grid"
        raise invalid(source, "search.algorithm", search.algorithm, reason)


def _points(
    source: str, value: object, params: tuple[Parameter, ...], base_config: TrialConfig
) -> tuple[dict[str, ConfigValue], ...]:
    """Configurations to try first: only declared parameters, within their ranges."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise invalid(source, "search.points_to_evaluate", value, "expected a list of mappings")
    by_name = {p.name: p for p in params}
    points = []
    for i, point in enumerate(value):
        path = f"search.points_to_evaluate[{i}]"
        if not isinstance(point, dict) or not point:
            raise invalid(source, path, point, "expected a non-empty mapping of parameters")
        typed = {}
        for key, v in point.items():
            if key not in by_name:
                hint = suggest_key(str(key), by_name)
                raise UsageError(f"{source}: {path}.{key}: not a declared parameter{hint}")
            typed[key] = coerce_value(key, v, source=f"{source}: {path}.{key}")
            if not by_name[key].contains(typed[key]):
                reason = f"outside parameters.{key} ({by_name[key].describe()})"
                raise invalid(source, f"{path}.{key}", v, reason)
        values = {**base_config.to_dict(), **typed}
        for key in typed:
            when = by_name[key].when
            known = all(ref in typed or ref not in by_name for ref in when)
            if known and not condition_holds(when, values):
                raise invalid(
                    source,
                    f"{path}.{key}",
                    point[key],
                    f"{key} is not sampled here: its `when` ({plain(when)}) does not hold",
                )
        points.append(typed)
    return tuple(points)


def _grid_size(source: str, params: tuple[Parameter, ...]) -> int:
    size = 1
    for p in params:
        if p.when:
            reason = "grid search cannot use `when` (it would repeat configurations)"
            raise invalid(source, f"parameters.{p.name}.when", plain(p.when), reason)
        count = p.grid_size()
        if count is None:
            reason = "grid search needs a finite grid: give this float a step, or use choices"
            raise invalid(source, f"parameters.{p.name}.step", None, reason)
        if count > MAX_GRID_POINTS:  # each value is listed: a fine step would never end
            reason = f"grid search lists each value: this range has {count}, over {MAX_GRID_POINTS}"
            raise invalid(source, f"parameters.{p.name}", p.describe(), reason)
        size *= count
    return size


def _search(
    source: str, value: object, params: tuple[Parameter, ...], base_config: TrialConfig
) -> SearchSettings:
    search = read_mapping(source, "search", value)
    check_keys(source, "search", search, SECTION_KEYS["search"])
    algorithm = read_choice(source, "search.algorithm", search.get("algorithm", "tpe"), ALGORITHMS)
    if algorithm == "cmaes" and importlib.util.find_spec("cmaes") is None:
        reason = "Optuna's CMA-ES sampler needs the cmaes package (pip install cmaes)"
        raise invalid(source, "search.algorithm", algorithm, reason)
    seed = read_int(source, "search.seed", search.get("seed", 0), minimum=0)
    max_concurrent = read_int(
        source, "search.max_concurrent", search.get("max_concurrent", 1), minimum=1
    )
    points = _points(source, search.get("points_to_evaluate"), params, base_config)
    if algorithm == "grid":
        size = _grid_size(source, params)
        if points:
            reason = "grid search runs every grid point; these would repeat some"
            raise invalid(source, "search.points_to_evaluate", search["points_to_evaluate"], reason)
        num_samples = read_int(
            source, "search.num_samples", search.get("num_samples", size), minimum=1
        )
        if num_samples > size:
            reason = f"the grid has only {size} points"
            raise invalid(source, "search.num_samples", num_samples, reason)
    else:
        num_samples = search.get("num_samples", DEFAULT_NUM_SAMPLES)
        num_samples = read_int(source, "search.num_samples", num_samples, minimum=1)
    if len(points) > num_samples:
        reason = (
            f"only the first num_samples ({num_samples}) of these {len(points)} points would run"
        )
        raise invalid(source, "search.points_to_evaluate", search["points_to_evaluate"], reason)
    return SearchSettings(algorithm, seed, num_samples, max_concurrent, points)


def _scheduler(source: str, value: object) -> SchedulerSettings:
    scheduler = read_mapping(source, "scheduler", value)
    check_keys(source, "scheduler", scheduler, SECTION_KEYS["scheduler"])
    kind = read_choice(source, "scheduler.kind", scheduler.get("kind") or "none", SCHEDULERS)
    grace = read_int(source, "scheduler.grace_period", scheduler.get("grace_period", 1), minimum=1)
    factor = read_number(source, "scheduler.reduction_factor", scheduler.get("reduction_factor", 2))
    if factor <= 1:
        raise invalid(source, "scheduler.reduction_factor", factor, "it must be > 1")
    return SchedulerSettings(kind, grace, float(factor))


def _repeats(source: str, value: object) -> tuple[int, ...]:
    path, seeds = "repeats", value
    if isinstance(value, dict):
        check_keys(source, "repeats", value, SECTION_KEYS["repeats"], required=("seeds",))
        path, seeds = "repeats.seeds", value["seeds"]
    if seeds is None:
        return PAPER_SEEDS[:1]
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        if not 1 <= seeds <= len(PAPER_SEEDS):
            reason = (
                f"a count takes the first n paper seeds, so n must lie in 1..{len(PAPER_SEEDS)}"
            )
            raise invalid(source, path, seeds, reason)
        return PAPER_SEEDS[:seeds]
    if not isinstance(seeds, list) or not seeds:
        raise invalid(source, path, seeds, "expected a non-empty list of seeds or a count 1..5")
    for i, seed in enumerate(seeds):
        read_int(source, f"{path}[{i}]", seed, minimum=0)
        if seed in seeds[:i]:
            raise invalid(source, f"{path}[{i}]", seed, "duplicate seed")
    return tuple(seeds)


def _resources(source: str, value: object) -> Resources:
    resources = read_mapping(source, "resources", value)
    check_keys(source, "resources", resources, SECTION_KEYS["resources"])
    cpus = read_number(source, "resources.cpus", resources.get("cpus", 1))
    gpus = read_number(source, "resources.gpus", resources.get("gpus", 0))
    if cpus <= 0:
        raise invalid(source, "resources.cpus", cpus, "it must be > 0")
    if gpus < 0:
        raise invalid(source, "resources.gpus", gpus, "it must be >= 0")
    return Resources(float(cpus), float(gpus))


def parse_space(raw: object, source: str) -> SpaceFields:
    """Validate a space dict (after overrides); the SearchSpace fields but source and raw."""
    if raw is None:
        raise UsageError(f"{source}: the file is empty")
    data = read_mapping(source, "", raw)
    check_keys(source, "", data, TOP_KEYS, required=REQUIRED_TOP_KEYS)
    name = data["name"]
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise invalid(source, "name", name, "use lower-case letters, digits, '_' and '-'")
    description = data["description"]
    if not isinstance(description, str) or not description.strip():
        raise invalid(source, "description", description, "say why the ranges are what they are")
    objectives = _objectives(source, data["metric"])
    metric = objectives[0].name  # the primary objective
    base, base_config = _monitored(*_base(source, data.get("base")), metric=metric)
    parameters = parse_parameters(source, data["parameters"], base, base_config)
    search = _search(source, data.get("search"), parameters, base_config)
    seeds = _repeats(source, data.get("repeats"))
    scheduler = _scheduler(source, data.get("scheduler"))
    _check_objectives(source, objectives, search, scheduler)
    baseline = parse_baseline(source, data, parameters, base_config)
    baseline_search = parse_baseline_search(
        source, data, parameters=parameters, base=base, arm=baseline, base_config=base_config
    )
    check_tuned_baseline(
        source, baseline_search, algorithm=search.algorithm, objectives=len(objectives)
    )
    budget_epochs, base, base_config = parse_budgets(
        source,
        data.get("budgets"),
        base=base,
        base_config=base_config,
        parameters=parameters,
        baseline=baseline,
        scheduler_kind=scheduler.kind,
    )
    return {
        "name": name,
        "description": " ".join(description.split()),
        "metric": metric,
        "mode": objectives[0].mode,
        "objectives": objectives,
        "base": base,
        "base_config": base_config,
        "parameters": parameters,
        "search": search,
        "scheduler": scheduler,
        "seeds": seeds,
        "resources": _resources(source, data.get("resources")),
        "baseline": baseline,
        "baseline_search": baseline_search,
        "budget_epochs": budget_epochs,
        "confirm": parse_confirm(
            source, data.get("confirm"), search_seeds=seeds, num_samples=search.num_samples
        ),
        "verdict": parse_verdict(source, data.get("verdict"), metric=metric),
    }
