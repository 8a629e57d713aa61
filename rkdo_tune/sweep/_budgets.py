"""The `budgets` section: budget points (issue 13 §3).

    budgets: {epochs: [1, 2, 5, 10]}

Each configuration and seed trains once, to the largest budget, and records at
every budget point the complete evaluation and diagnostics that a run of that
many epochs ends with; the report reads each point as that budget's result.
That is exact where the first k epochs of a long run *are* a k-epoch run; a trial
whose schedule reads the total number of steps (`schedules.schedules_over_total`)
trains each shorter point as a run of its own instead, and --dry-run says so.
The section is refused with a scheduler that stops trials early (a stopped trial
would lose its later points) and with `epochs` set elsewhere.
"""

from __future__ import annotations

import dataclasses

from rkdo_tune.config import ConfigValue, TrialConfig
from rkdo_tune.schedules import schedules_over_total
from rkdo_tune.sweep._checks import SECTION_KEYS, check_keys, invalid, read_int, read_mapping
from rkdo_tune.sweep._parameters import Parameter

(BUDGET_DIMENSION,) = SECTION_KEYS["budgets"]  # the one dimension budget points count in


def _points(source: str, value: object) -> tuple[int, ...]:
    section = read_mapping(source, "budgets", value)
    check_keys(source, "budgets", section, SECTION_KEYS["budgets"], required=(BUDGET_DIMENSION,))
    key = f"budgets.{BUDGET_DIMENSION}"
    points = section[BUDGET_DIMENSION]
    if not isinstance(points, list) or not points:
        raise invalid(source, key, points, "expected a non-empty list of epoch counts")
    for i, point in enumerate(points):
        read_int(source, f"{key}[{i}]", point, minimum=1)
        if i and point <= points[i - 1]:
            raise invalid(source, f"{key}[{i}]", point, "budget points must increase")
    return tuple(points)


def _schedule_values(
    parameters: tuple[Parameter, ...],
    base_config: TrialConfig,
    baseline: dict[str, ConfigValue] | None,
) -> list[tuple[str, str, str]]:
    """(where, key, value) of every alpha and tau schedule a trial of the space can get."""
    found = []
    for key in ("alpha_schedule", "tau_schedule"):
        found.append((f"base.{key}", key, str(getattr(base_config, key))))
        found += (
            [(f"baseline.{key}", key, str(baseline[key]))] if baseline and key in baseline else []
        )
        for parameter in parameters:
            if parameter.name == key:
                where = f"parameters.{key}.choices"
                found += [(where, key, str(choice)) for choice in parameter.choices]
    return found


def parse_budgets(
    source: str,
    value: object,
    *,
    base: dict[str, ConfigValue],
    base_config: TrialConfig,
    parameters: tuple[Parameter, ...],
    baseline: dict[str, ConfigValue] | None,
    scheduler_kind: str,
) -> tuple[tuple[int, ...], dict[str, ConfigValue], TrialConfig]:
    """(budget points, base, base config) with `epochs` set to the largest point; no points
    when the section is absent."""
    if value is None:
        return (), base, base_config
    points = _points(source, value)
    largest = points[-1]
    if BUDGET_DIMENSION in base and base[BUDGET_DIMENSION] != largest:
        reason = f"the largest budget point ({largest} epochs) is the run's own epochs"
        raise invalid(source, f"base.{BUDGET_DIMENSION}", base[BUDGET_DIMENSION], reason)
    for parameter in parameters:
        if parameter.name == BUDGET_DIMENSION:
            reason = "the budget points set the epochs; remove the parameter or `budgets`"
            raise invalid(source, f"parameters.{BUDGET_DIMENSION}", parameter.describe(), reason)
    if baseline and BUDGET_DIMENSION in baseline:
        reason = "the baseline records the same budget points as every other trial"
        raise invalid(source, f"baseline.{BUDGET_DIMENSION}", baseline[BUDGET_DIMENSION], reason)
    if scheduler_kind != "none":
        reason = "a trial it stops early loses its later budget points; use kind none"
        raise invalid(source, "scheduler.kind", scheduler_kind, reason)
    base = {**base, BUDGET_DIMENSION: largest}
    return points, base, dataclasses.replace(base_config, epochs=largest)


def schedules_reading_total(
    parameters: tuple[Parameter, ...],
    base_config: TrialConfig,
    baseline: dict[str, ConfigValue] | None,
) -> list[str]:
    """'<where> <schedule>' of each schedule a trial can get that reads the total budget."""
    found = []
    for where, key, schedule in _schedule_values(parameters, base_config, baseline):
        kwargs = {"alpha_schedule": "constant", "tau_schedule": "level", key: schedule}
        if schedules_over_total(**kwargs):
            found.append(f"{where} {schedule}")
    return found


def budget_plan_lines(points: tuple[int, ...], *, runs: int, reading_total: list[str]) -> list[str]:
    """What --dry-run says of budget points, for `runs` search-stage training runs, when
    trials can get the schedules `reading_total` (those train shorter points separately)."""
    if not points:
        return []
    inside, separate = runs * points[-1], runs * sum(points)
    listed = ", ".join(map(str, points))
    lines = [
        f"budget points: {listed} epochs, each scored inside one run per configuration and "
        f"seed (the first k epochs of a run whose schedules do not read the total budget are "
        f"a k-epoch run): {inside} training epochs instead of {separate} as separate trials"
    ]
    if reading_total:
        lines.append(
            f"  but a trial with {', '.join(reading_total)} (a schedule that reads the total "
            "budget) trains each shorter point as a run of its own after its full run: up to "
            f"{separate} training epochs"
        )
    return lines
