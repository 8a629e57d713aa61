"""The study sections of a space: the I-Con control arm (`baseline`) and `confirm`.

    baseline: {debias: 0.1}        # I-Con on the space's base settings, these keys over it
    baseline: {tune: true}         # I-Con tuned as RKDO is: its own study (`ICON_KNOBS`)
    baseline: null                 # no control arm
    confirm: {top: 2, seeds: [789, 101, 7]}
    verdict: {metric: eval/linear_acc, margin: 0.01}   # the primary endpoint and its margin

Without a `baseline` key, a space whose trials all train RKDO gets the default
arm `{objective: icon}`: I-Con's reference knobs (debias 0.2, Gaussian kernel)
and everything else from `base`. A space that samples `objective` gets no extra
arm: its I-Con trials are the controls.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from rkdo_tune.config import (
    KERNEL_STUDENT_T,
    KERNELS,
    OBJECTIVE_ICON,
    ConfigValue,
    TrialConfig,
    coerce_value,
)
from rkdo_tune.errors import InvalidValue
from rkdo_tune.judgement import DEFAULT_MARGIN
from rkdo_tune.metrics import EVAL_LINEAR_ACC, VERDICT_METRICS
from rkdo_tune.sweep._checks import (
    SECTION_KEYS,
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
from rkdo_tune.sweep._parameters import Parameter, parse_parameters

BASELINE_OBJECTIVE = OBJECTIVE_ICON
# Fresh seeds for `confirm` when the file lists none: paper seeds the search did not use, then
# these, in order, until there are as many as the search used.
SPARE_SEEDS = (789, 101, 7, 8, 9, 10, 11, 12, 13, 14)


@dataclass(frozen=True)
class ConfirmSettings:
    """Re-run the `top` configurations and the baseline on `seeds`, disjoint from the search's."""

    top: int
    seeds: tuple[int, ...]


# What a tuned baseline (`baseline: {tune: true}`) searches: I-Con's own knobs, each over
# the range its objective accepts where that is bounded, and a Student-t df from heavy tails
# (0.5) to nearly Gaussian (10); plus τ, with RKDO's own range, where the space searches τ.
# A knob the `baseline` section fixes is not searched.
ICON_KNOBS: dict[str, dict[str, object]] = {
    "debias": {"type": "float", "low": 0.0, "high": 1.0},
    "kernel": {"type": "categorical", "choices": list(KERNELS)},
    "student_df": {
        "type": "float",
        "low": 0.5,
        "high": 10.0,
        "log": True,
        "when": {"kernel": KERNEL_STUDENT_T},
    },
}
SHARED_KNOBS = ("tau",)  # searched for I-Con too when the space searches them for RKDO
TUNE_KEY = "tune"


def samples_objective(parameters: tuple[Parameter, ...]) -> bool:
    return any(p.name == "objective" for p in parameters)


def parse_baseline(
    source: str,
    data: dict,
    parameters: tuple[Parameter, ...],
    base_config: TrialConfig,
) -> dict[str, ConfigValue] | None:
    """The baseline arm's config keys over `base`, or None when the space has no extra arm."""
    if samples_objective(parameters):
        if data.get("baseline") is not None:
            reason = "this space samples `objective`: its I-Con trials are the controls"
            raise invalid(source, "baseline", data["baseline"], reason)
        return None
    if "baseline" in data and data["baseline"] is None:
        return None
    if "baseline" not in data and base_config.objective == BASELINE_OBJECTIVE:
        return None  # an I-Con-only space has nothing to compare with an I-Con arm
    given = read_mapping(source, "baseline", data.get("baseline"))
    check_keys(source, "baseline", given, SECTION_KEYS["baseline"])
    check_not_set_by_sweep(source, "baseline", given)
    given = {k: v for k, v in given.items() if k != TUNE_KEY}
    arm = {"objective": BASELINE_OBJECTIVE}
    arm.update(
        {key: coerce_value(key, v, source=f"{source}: baseline.{key}") for key, v in given.items()}
    )
    if arm["objective"] != BASELINE_OBJECTIVE:
        reason = f"the control arm trains {BASELINE_OBJECTIVE}"
        raise invalid(source, "baseline.objective", arm["objective"], reason)
    try:
        TrialConfig(**{**base_config.to_dict(), **arm})
    except InvalidValue as exc:
        raise invalid(source, f"baseline.{exc.key}", exc.value, config_rule(exc)) from None
    return arm


def parse_baseline_search(
    source: str,
    data: dict,
    *,
    parameters: tuple[Parameter, ...],
    base: Mapping[str, ConfigValue],
    arm: dict[str, ConfigValue] | None,
    base_config: TrialConfig,
) -> tuple[Parameter, ...]:
    """What `baseline: {tune: true}` searches for I-Con (empty: the baseline is not tuned).

    `objective` (I-Con only) first, so that every trial of the I-Con study names its
    objective, then `ICON_KNOBS` less those `base` or `arm` fix, then each of SHARED_KNOBS
    the space searches for RKDO, over RKDO's range. The knobs are checked as any parameter.
    """
    given = data.get("baseline")
    tune = given.get(TUNE_KEY, False) if isinstance(given, dict) else False
    if not read_bool(source, f"baseline.{TUNE_KEY}", tune):
        return ()
    if arm is None:
        reason = "only a space with an I-Con baseline arm can tune it"
        raise invalid(source, f"baseline.{TUNE_KEY}", tune, reason)
    fixed = {**base, **arm}
    icon_config = TrialConfig(**{**base_config.to_dict(), **arm})
    knobs: dict[str, object] = {
        "objective": {"type": "categorical", "choices": [BASELINE_OBJECTIVE]}
    }
    knobs |= {name: dict(spec) for name, spec in ICON_KNOBS.items() if name not in fixed}
    if "student_df" in knobs and "kernel" in fixed:  # the kernel is fixed: no condition left
        del knobs["student_df"]["when"]
        if icon_config.kernel != KERNEL_STUDENT_T:
            del knobs["student_df"]
    also_fixed = {k: v for k, v in fixed.items() if k != "objective"}  # the study's one choice
    tuned = parse_parameters(f"{source}: baseline.{TUNE_KEY}", knobs, also_fixed, icon_config)
    shared = tuple(
        dataclasses.replace(p, when={})
        for p in parameters
        if p.name in SHARED_KNOBS and p.name not in arm
    )
    return (*tuned, *shared)


def check_tuned_baseline(
    source: str, knobs: tuple[Parameter, ...], *, algorithm: str, objectives: int
) -> None:
    """A tuned baseline is a second study run as the first: it needs a sampler of one metric."""
    if not knobs:
        return
    if algorithm == "grid":
        reason = "a tuned baseline samples I-Con's knobs, which have no grid: use a sampler"
        raise invalid(source, f"baseline.{TUNE_KEY}", True, reason)
    if objectives > 1:
        reason = "a tuned baseline compares one metric: search one objective"
        raise invalid(source, f"baseline.{TUNE_KEY}", True, reason)


def _fresh_seeds(search_seeds: tuple[int, ...]) -> tuple[int, ...]:
    spare = [seed for seed in SPARE_SEEDS if seed not in search_seeds]
    return tuple(spare[: len(search_seeds)])


def parse_confirm(
    source: str, value: object, *, search_seeds: tuple[int, ...], num_samples: int
) -> ConfirmSettings | None:
    """`confirm: {top: K, seeds: [...]}`; None (or top 0) runs no confirmation."""
    if value is None:
        return None
    confirm = read_mapping(source, "confirm", value)
    check_keys(source, "confirm", confirm, SECTION_KEYS["confirm"], required=("top",))
    top = read_int(source, "confirm.top", confirm["top"], minimum=0)
    if top == 0:
        return None
    if top > num_samples:
        reason = f"the search runs only {num_samples} configurations"
        raise invalid(source, "confirm.top", top, reason)
    seeds = confirm.get("seeds")
    if seeds is None:
        return ConfirmSettings(top, _fresh_seeds(search_seeds))
    if not isinstance(seeds, list) or not seeds:
        raise invalid(source, "confirm.seeds", seeds, "expected a non-empty list of seeds")
    for i, seed in enumerate(seeds):
        read_int(source, f"confirm.seeds[{i}]", seed, minimum=0)
        if seed in seeds[:i]:
            raise invalid(source, f"confirm.seeds[{i}]", seed, "duplicate seed")
        if seed in search_seeds:
            reason = "the search uses this seed: confirmation needs fresh ones"
            raise invalid(source, f"confirm.seeds[{i}]", seed, reason)
    return ConfirmSettings(top, tuple(seeds))


@dataclass(frozen=True)
class VerdictSettings:
    """The primary endpoint (a metric at the final budget) and its non-inferiority margin.

    `verdict: {metric, margin}`. The metric defaults to the space's `metric` when a
    verdict compares it (`metrics.VERDICT_METRICS`), else the linear probe; the
    margin to `judgement.DEFAULT_MARGIN`, in the metric's own units.
    """

    metric: str = EVAL_LINEAR_ACC
    margin: float = DEFAULT_MARGIN


def parse_verdict(source: str, value: object, *, metric: str) -> VerdictSettings:
    """`verdict: {metric: eval/linear_acc, margin: 0.01}`; both keys optional."""
    default = metric if metric in VERDICT_METRICS else EVAL_LINEAR_ACC
    given = read_mapping(source, "verdict", {} if value is None else value)
    check_keys(source, "verdict", given, SECTION_KEYS["verdict"])
    primary = read_choice(source, "verdict.metric", given.get("metric", default), VERDICT_METRICS)
    margin = float(read_number(source, "verdict.margin", given.get("margin", DEFAULT_MARGIN)))
    if margin <= 0:
        raise invalid(source, "verdict.margin", margin, "it must be > 0")
    return VerdictSettings(primary, margin)
