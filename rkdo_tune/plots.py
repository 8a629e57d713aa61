"""Figures of one training run, drawn off-screen (Agg) so they work on headless Ray workers.

Figures are built with `matplotlib.figure.Figure`, not pyplot: no global
figure state, so concurrent trials in one worker process cannot collide.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

EARLY_STOP_COLOR = "tab:red"


def loss_curve_figure(
    *,
    steps: Sequence[int],
    losses: Sequence[float],
    slopes: Sequence[float],
    early_stop_step: float | None,
    title: str,
    slope_window: int | None = None,
) -> Figure:
    """Loss (top) and its windowed slope (bottom) against the optimiser step.

    steps, losses, slopes: (T,) each; slopes may hold NaN (the first window),
    which leaves a gap. The early-stop step, when there is one (not None,
    NaN or the diagnostics' -1), is a dashed vertical line on both panels.
    """
    figure = Figure(figsize=(7.0, 5.0), layout="constrained")
    FigureCanvasAgg(figure)
    loss_axes, slope_axes = figure.subplots(2, 1, sharex=True)
    loss_axes.plot(steps, losses, color="tab:blue", linewidth=1.2, label="train/loss")
    loss_axes.set_ylabel("loss")
    window = f" (window {slope_window})" if slope_window else ""
    slope_axes.plot(
        steps, slopes, color="tab:orange", linewidth=1.2, label=f"loss slope per step{window}"
    )
    slope_axes.axhline(0.0, color="0.6", linewidth=0.8)
    slope_axes.set_ylabel("slope")
    slope_axes.set_xlabel("optimiser step")
    if early_stop_step is not None and math.isfinite(early_stop_step) and early_stop_step >= 0:
        for axes in (loss_axes, slope_axes):
            axes.axvline(
                early_stop_step,
                color=EARLY_STOP_COLOR,
                linestyle="--",
                linewidth=1.2,
                label=f"early stop (step {int(early_stop_step)})",
            )
    for axes in (loss_axes, slope_axes):
        axes.grid(alpha=0.3)
        if axes.get_lines():
            axes.legend(loc="upper right", fontsize="small")
    figure.suptitle(title)
    return figure
