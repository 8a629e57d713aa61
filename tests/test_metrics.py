"""The one rule for a mean over seeds, with each way of treating a NaN seed."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rkdo_tune.metrics import mean_over_seeds


def test_mean_over_seeds_is_the_mean_and_sample_std():
    mean, std = mean_over_seeds([0.5, 0.7, 0.9], non_finite="propagate")
    assert mean == pytest.approx(0.7)
    assert std == pytest.approx(np.std([0.5, 0.7, 0.9], ddof=1))
    assert mean_over_seeds([0.4], non_finite="omit") == (0.4, 0.0)


def test_a_non_finite_seed_spoils_the_mean_or_is_left_out_as_asked():
    values = [0.1, math.nan, 0.3, math.inf]
    assert all(math.isnan(x) for x in mean_over_seeds(values, non_finite="propagate"))
    mean, std = mean_over_seeds(values, non_finite="omit")
    assert mean == pytest.approx(0.2)
    assert std == pytest.approx(np.std([0.1, 0.3], ddof=1))
    for rule in ("propagate", "omit"):
        assert all(math.isnan(x) for x in mean_over_seeds([], non_finite=rule))
    assert all(math.isnan(x) for x in mean_over_seeds([math.nan], non_finite="omit"))


def test_an_unknown_rule_is_refused():
    with pytest.raises(ValueError, match="non_finite"):
        mean_over_seeds([1.0], non_finite="drop")  # type: ignore[arg-type]
