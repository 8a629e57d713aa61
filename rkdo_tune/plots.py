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


def seed_mean_curve_figure(
    *, steps: Sequence[int], panels: Sequence[tuple[str, Sequence[Sequence[float]]]], title: str
) -> Figure:
    """One panel per metric: each seed's values thin and grey, their mean bold, against the step.

    steps: (E,) the evaluation steps; each panel is (metric name, per-seed values (S, E)),
    which may hold NaN (a diverged seed): the mean is then NaN there and leaves a gap.
    """
    figure = Figure(figsize=(4.0 * max(1, len(panels)), 3.6), layout="constrained")
    FigureCanvasAgg(figure)
    axes_row = figure.subplots(1, max(1, len(panels)), squeeze=False)[0]
    for axes, (name, per_seed) in zip(axes_row, panels, strict=False):
        for index, values in enumerate(per_seed):
            label = "each seed" if index == 0 else None
            axes.plot(steps, values, color="0.65", linewidth=0.8, label=label)
        means = [
            math.fsum(column) / len(column) if column else math.nan
            for column in zip(*per_seed, strict=True)
        ]
        axes.plot(steps, means, color="tab:blue", linewidth=1.8, marker="o", label="seed-mean")
        axes.set_title(name, fontsize="medium")
        axes.set_xlabel("optimiser step")
        axes.grid(alpha=0.3)
        axes.legend(loc="best", fontsize="small")
    figure.suptitle(title)
    return figure
