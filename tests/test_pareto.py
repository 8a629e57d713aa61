"""Non-domination over objectives with their own directions, on a worked example."""

from __future__ import annotations

import math

import pytest

from rkdo_tune.pareto import dominates, dominators, pareto_front

# (accuracy: max, cost: min). Worked by hand:
#   A (0.90, 50)  on the front: nothing is as accurate
#   B (0.85, 30)  on the front: only E is as cheap, and E is less accurate
#   C (0.85, 30)  ties B exactly: neither dominates the other, both stay
#   D (0.80, 40)  dominated by B and C (more accurate and cheaper)
#   E (0.70, 30)  dominated by B and C (as cheap, more accurate)
#   F (0.90, 60)  dominated by A (as accurate, cheaper)
#   G (nan, 10)   not finite: off the front, and it dominates nothing
POINTS = [(0.90, 50), (0.85, 30), (0.85, 30), (0.80, 40), (0.70, 30), (0.90, 60), (math.nan, 10)]
MODES = ("max", "min")


def test_the_worked_example():
    assert dominators(POINTS, MODES) == [(), (), (), (1, 2), (1, 2), (0,), ()]
    assert pareto_front(POINTS, MODES) == [True, True, True, False, False, False, False]


def test_the_direction_of_each_objective_matters():
    assert dominates((0.9, 30), (0.8, 40), MODES)
    assert not dominates((0.9, 30), (0.8, 40), ("max", "max"))
    assert pareto_front([(1, 1), (2, 2)], ("min", "min")) == [True, False]
    assert pareto_front([(1, 1), (2, 2)], ("max", "max")) == [False, True]
    assert not dominates((1, 1), (1, 1), MODES)  # equal points: no domination


def test_one_objective_is_the_best_value_and_its_ties():
    assert pareto_front([(0.5,), (0.7,), (0.7,)], ("max",)) == [False, True, True]


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="modes"):
        dominators([(1, 2)], ("max", "up"))
    with pytest.raises(ValueError, match="one per mode"):
        dominators([(1, 2, 3)], MODES)
