"""MLflow run names: what tells a run apart comes first, because the UI truncates the column.

    search trial        α=0.304 · 5002684b           its searched values, then its trial id
    baseline arm        icon · baseline
    confirmation        α=0.304 · 5002684b re-run    the id of the search trial it re-runs
    seed run            s42 · α=0.304                (s42 · icon · baseline for the baseline's)

Values are written as the verdict writes them (`verdict.config_label`: its symbols,
3 significant digits), compactly. Importing this module does not import MLflow.
"""

from __future__ import annotations

from collections.abc import Mapping

from rkdo_tune.sweep.protocol import TrialRole
from rkdo_tune.verdict import ARM_BASELINE, STAGE_CONFIRMATION, config_label

SEPARATOR = " · "
RERUN = "re-run"
# Values that name themselves: 'icon', not 'objective=icon'.
BARE_VALUES = ("objective",)


def values_label(params: Mapping[str, object]) -> str:
    """'rkdo α=0.304 d=3' from a trial's searched values, in the order given."""
    bare = [str(params[name]) for name in BARE_VALUES if name in params]
    rest = {name: value for name, value in params.items() if name not in BARE_VALUES}
    return " ".join(part for part in (*bare, config_label(rest, equals="=", joiner=" ")) if part)


def trial_run_name(params: Mapping[str, object], *, trial_id: str, role: TrialRole) -> str:
    """The trial run's name: its values, then its id (or `baseline`), `re-run` if confirming."""
    who = ARM_BASELINE if role.is_baseline else (role.confirms or trial_id)
    if role.stage == STAGE_CONFIRMATION:
        who = f"{who} {RERUN}"
    return SEPARATOR.join(part for part in (values_label(params), who) if part)


def seed_run_name(seed: int, params: Mapping[str, object], *, role: TrialRole) -> str:
    """The seed run's name: the seed first, so that a trial's seeds differ at a glance."""
    arm = ARM_BASELINE if role.is_baseline else ""
    return SEPARATOR.join(part for part in (f"s{seed}", values_label(params), arm) if part)
