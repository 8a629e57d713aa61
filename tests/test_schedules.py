"""Temperature and alpha schedules: endpoints, monotonicity, bounds, plateau logic, state."""

from __future__ import annotations

import itertools
import math

import pytest

from rkdo_tune.errors import UsageError
from rkdo_tune.schedules import (
    ALPHA_KINDS,
    TEMPERATURE_KINDS,
    AlphaSchedule,
    loss_beta,
    temperature_at,
)

TOTAL = 100


def _non_increasing(values: list[float]) -> bool:
    return all(b <= a + 1e-15 for a, b in itertools.pairwise(values))


# ----- temperature --------------------------------------------------------------------------
def test_temperature_kinds():
    assert TEMPERATURE_KINDS == ("level", "linear", "cosine", "constant")


@pytest.mark.parametrize("kind", ["level", "constant"])
def test_level_and_constant_keep_tau0(kind):
    assert {temperature_at(s, TOTAL, kind=kind, tau0=0.5, beta=0.3) for s in range(TOTAL + 1)} == {
        0.5
    }


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_per_step_cooling_endpoints_and_monotonicity(kind):
    taus = [temperature_at(s, TOTAL, kind=kind, tau0=0.5, beta=0.3) for s in range(TOTAL + 1)]
    assert taus[0] == pytest.approx(0.5)
    assert taus[-1] == pytest.approx(0.5 * 0.7)
    assert _non_increasing(taus)
    assert taus[TOTAL // 2] == pytest.approx(0.5 * (1 - 0.3 / 2))


def test_linear_is_the_paper_formula():
    assert temperature_at(30, TOTAL, kind="linear", tau0=0.5, beta=0.1) == pytest.approx(
        0.5 * (1 - 0.1 * 30 / TOTAL)
    )


@pytest.mark.parametrize("kind", TEMPERATURE_KINDS)
def test_tau_stays_positive_beyond_the_horizon(kind):
    for step in (-5, 0, TOTAL, 10 * TOTAL):
        tau = temperature_at(step, TOTAL, kind=kind, tau0=0.5, beta=0.99)
        assert 0.5 * 0.01 - 1e-12 <= tau <= 0.5


def test_loss_beta_cools_per_level_only_for_level():
    assert loss_beta("level", 0.1) == 0.1
    for kind in ("linear", "cosine", "constant"):
        assert loss_beta(kind, 0.1) == 0.0


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"kind": "exp", "tau0": 0.5, "beta": 0.1}, "tau_schedule"),
        ({"kind": "linear", "tau0": 0.0, "beta": 0.1}, "tau"),
        ({"kind": "linear", "tau0": 0.5, "beta": 1.0}, "beta"),
    ],
)
def test_bad_temperature_arguments(kwargs, name):
    with pytest.raises(UsageError, match=f"^{name}="):
        temperature_at(0, TOTAL, **kwargs)


# ----- alpha --------------------------------------------------------------------------------
def _schedule(kind: str = "linear", **overrides) -> AlphaSchedule:
    options = {
        "kind": kind,
        "alpha0": 0.8,
        "alpha_min": 0.1,
        "total_steps": TOTAL,
        "decay_factor": 0.5,
        "step_every": 10,
        "patience": 3,
        "plateau_threshold": 0.01,
    }
    return AlphaSchedule(**{**options, **overrides})


def test_alpha_kinds():
    assert ALPHA_KINDS == ("constant", "linear", "cosine", "exponential", "step", "plateau")


@pytest.mark.parametrize("kind", ALPHA_KINDS)
def test_alpha_is_bounded_and_non_increasing(kind):
    schedule = _schedule(kind)
    values = []
    for step in range(-3, 3 * TOTAL):
        if step % 5 == 0:
            schedule.observe_slope(0.0)  # a flat loss, for plateau
        values.append(schedule.value(step))
    assert _non_increasing(values)
    assert all(0.1 <= v <= 0.8 for v in values)


@pytest.mark.parametrize(
    ("kind", "midpoint"),
    [
        ("linear", 0.45),
        ("cosine", 0.45),
        ("exponential", 0.8 * (0.1 / 0.8) ** 0.5),
    ],
)
def test_annealing_endpoints(kind, midpoint):
    schedule = _schedule(kind)
    assert schedule.value(0) == pytest.approx(0.8)
    assert schedule.value(TOTAL // 2) == pytest.approx(midpoint)
    assert schedule.value(TOTAL) == pytest.approx(0.1)
    assert schedule.value(5 * TOTAL) == pytest.approx(0.1)


def test_cosine_starts_and_ends_flat():
    schedule = _schedule("cosine")
    assert 0.8 - schedule.value(1) < schedule.value(50) - schedule.value(51)
    assert schedule.value(99) - 0.1 < schedule.value(50) - schedule.value(51)


def test_constant_ignores_alpha_min_and_slopes():
    schedule = _schedule("constant", alpha_min=0.0)
    for _ in range(10):
        schedule.observe_slope(0.0)
    assert {schedule.value(s) for s in range(0, 3 * TOTAL, 7)} == {0.8}


def test_step_decay_drops_every_step_every_and_floors():
    schedule = _schedule("step")
    assert schedule.value(0) == schedule.value(9) == 0.8
    assert schedule.value(10) == schedule.value(19) == pytest.approx(0.4)
    assert schedule.value(20) == pytest.approx(0.2)
    assert schedule.value(30) == pytest.approx(0.1)  # 0.1 exactly: floored from here on
    assert schedule.value(40) == 0.1


def test_plateau_decays_after_patience_flat_windows():
    schedule = _schedule("plateau")
    seen = []
    # flat, flat, steep (resets), flat x3 (decay), flat x2, steep, flat x3 (decay), flat x6
    slopes = [0.001, 0.002, 0.5, 0.001, -0.003, 0.0, 0.001, 0.001, 0.2, 0.0, 0.0, 0.0]
    slopes += [0.0] * 6
    for slope in slopes:
        schedule.observe_slope(slope)
        seen.append(schedule.value(0))
    assert seen[:5] == [0.8] * 5
    assert seen[5:11] == [pytest.approx(0.4)] * 6
    assert seen[11:14] == [pytest.approx(0.2)] * 3
    assert seen[14:] == [0.1] * 4  # two further decays reach the floor and stay there
    assert schedule.value(10 * TOTAL) == 0.1  # plateau does not depend on the step


def test_plateau_counter_resets_on_a_non_finite_slope():
    schedule = _schedule("plateau")
    for slope in (0.0, 0.0, math.nan, 0.0, 0.0):
        schedule.observe_slope(slope)
    assert schedule.value(0) == 0.8


@pytest.mark.parametrize("kind", ALPHA_KINDS)
def test_alpha_state_round_trips(kind):
    schedule = _schedule(kind)
    for slope in (0.0, 0.0, 0.0, 0.0, 0.0):
        schedule.observe_slope(slope)
    state = schedule.state_dict()
    restored = _schedule(kind)
    restored.load_state_dict(state)
    assert restored.state_dict() == state
    for step in (0, 17, 55, TOTAL):
        assert restored.value(step) == schedule.value(step)
    schedule.observe_slope(0.0)
    restored.observe_slope(0.0)
    assert restored.value(0) == schedule.value(0)


def test_alpha_state_of_another_kind_is_refused():
    with pytest.raises(UsageError, match="kind"):
        _schedule("linear").load_state_dict(_schedule("plateau").state_dict())


@pytest.mark.parametrize(
    ("overrides", "name"),
    [
        ({"kind": "sigmoid"}, "alpha_schedule"),
        ({"alpha0": 0.0}, "alpha"),
        ({"alpha0": 1.2}, "alpha"),
        ({"alpha_min": 0.0}, "alpha_min"),
        ({"alpha_min": 0.9}, "alpha_min"),
        ({"total_steps": 0}, "total_steps"),
        ({"decay_factor": 1.0}, "alpha_decay_factor"),
        ({"step_every": 0}, "alpha_step_every"),
        ({"patience": 0}, "alpha_patience"),
        ({"plateau_threshold": 0.0}, "plateau_threshold"),
    ],
)
def test_bad_alpha_arguments(overrides, name):
    with pytest.raises(UsageError, match=f"^{name}=") as info:
        _schedule(**{"kind": "linear", **overrides})
    assert "\n" not in str(info.value)
