"""The loss-curve figure: two panels, the early-stop line only where there is one, a real PNG."""

from __future__ import annotations

import io
import math

import pytest

from rkdo_tune.plots import EARLY_STOP_COLOR, loss_curve_figure

STEPS = list(range(1, 21))
LOSSES = [2.0 / step for step in STEPS]
SLOPES = [math.nan] * 9 + [-0.01 * (20 - step) for step in STEPS[9:]]


def _early_stop_lines(axes):
    return [line for line in axes.get_lines() if line.get_color() == EARLY_STOP_COLOR]


def test_loss_and_slope_panels_with_the_early_stop_step_marked_on_both():
    figure = loss_curve_figure(
        steps=STEPS,
        losses=LOSSES,
        slopes=SLOPES,
        early_stop_step=14.0,
        title="rkdo  alpha=0.5  seed=42",
        slope_window=10,
    )
    loss_axes, slope_axes = figure.axes
    assert list(loss_axes.get_lines()[0].get_ydata()) == LOSSES
    assert slope_axes.get_xlabel() == "optimiser step"
    for axes in (loss_axes, slope_axes):
        (line,) = _early_stop_lines(axes)
        assert list(line.get_xdata()) == [14.0, 14.0]
    assert figure.get_suptitle() == "rkdo  alpha=0.5  seed=42"
    png = io.BytesIO()
    figure.savefig(png, format="png")  # NaN slopes of the first window must not break it
    assert png.getvalue().startswith(b"\x89PNG")


@pytest.mark.parametrize("no_step", [None, -1.0, math.nan])
def test_no_early_stop_line_when_the_loss_never_flattened(no_step):
    figure = loss_curve_figure(
        steps=STEPS, losses=LOSSES, slopes=SLOPES, early_stop_step=no_step, title="icon"
    )
    assert all(not _early_stop_lines(axes) for axes in figure.axes)


def test_an_empty_history_still_draws():
    figure = loss_curve_figure(steps=[], losses=[], slopes=[], early_stop_step=None, title="x")
    png = io.BytesIO()
    figure.savefig(png, format="png")
    assert png.getvalue().startswith(b"\x89PNG")
