"""The report's PNG figures (matplotlib Agg): sensitivity, curves, overspecialisation, Optuna.

Each function writes into `out_dir` and returns `Figure`s naming the files it
wrote, or notes saying why a figure was skipped.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")  # headless: reports are built on servers and in CI

import matplotlib.pyplot as plt
import optuna
import pandas as pd
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from rkdo_tune import metrics as m
from rkdo_tune.report import _stats

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure as MplFigure

    from rkdo_tune.tracking.reading import ParameterSpec, ParamValue

SENSITIVITY_PARAMS = {"alpha": "α", "depth": "depth d", "tau": "τ0", "beta": "β"}
COLOURS = {_stats.RKDO: "tab:blue", _stats.ICON: "tab:orange"}
LABELS = {_stats.RKDO: "RKDO", _stats.ICON: "I-Con"}
MAX_LEGEND_CURVES = 12


@dataclass(frozen=True)
class Figure:
    title: str
    file: str


def _save(fig: MplFigure, out_dir: Path, name: str) -> str:
    fig.tight_layout()
    fig.savefig(out_dir / name, dpi=110)
    plt.close(fig)
    return name


def plot_sensitivity(
    seeds: pd.DataFrame, *, metric: str, out_dir: Path
) -> tuple[list[Figure], list[str]]:
    """`metric` vs α, depth, τ0 and β (those that vary): mean ± std over seed runs per objective.

    An objective the parameter does not affect (α for I-Con) is drawn as a band instead.
    """
    params = _stats.varying(seeds, list(SENSITIVITY_PARAMS))
    if not params:
        return [], ["No sensitivity plots: α, depth, τ0 and β do not vary in this sweep."]
    tau_schedule = str(seeds["tau_schedule"].iloc[0]) if "tau_schedule" in seeds else "level"
    figures = []
    for param in params:
        table = _stats.metric_by_param(seeds, param=param, metric=metric)
        fig, ax = plt.subplots(figsize=(5.5, 3.8))
        for objective, rows in table.groupby("objective"):
            colour = COLOURS.get(objective, "gray")
            label = LABELS.get(objective, objective)
            if _stats.param_applies(objective, param, tau_schedule=tau_schedule):
                ax.errorbar(
                    rows["value"],
                    rows["mean"],
                    yerr=rows["std"].fillna(0),
                    marker="o",
                    capsize=3,
                    color=colour,
                    label=label,
                )
            else:
                values = seeds.loc[seeds["objective"] == objective, metric]
                mean, std = m.mean_over_seeds(values, non_finite=_stats.NON_FINITE)
                ax.axhline(mean, color=colour, linestyle="--", label=f"{label} (no {param})")
                ax.axhspan(mean - std, mean + std, color=colour, alpha=0.15)
        ax.set_xlabel(SENSITIVITY_PARAMS[param])
        ax.set_ylabel(metric)
        ax.set_title(f"{metric} vs {SENSITIVITY_PARAMS[param]} (mean ± std over seeds)")
        ax.legend(fontsize=8)
        name = _save(fig, out_dir, f"sensitivity_{param}.png")
        figures.append(Figure(f"{metric} vs {SENSITIVITY_PARAMS[param]}", name))
    return figures, []


def plot_learning_curves(
    seeds: pd.DataFrame, history: pd.DataFrame, *, out_dir: Path
) -> tuple[list[Figure], list[str]]:
    """train/loss vs step, one curve per trial (mean over seeds), early-stop points marked."""
    if history[history["key"] == m.TRAIN_LOSS].empty:
        return [], ["No learning curves: no train/loss history was logged."]
    objectives = [o for o in (_stats.RKDO, _stats.ICON) if o in set(seeds["objective"])]
    fig, axes = plt.subplots(1, len(objectives), figsize=(6 * len(objectives), 4), squeeze=False)
    for ax, objective in zip(axes[0], objectives, strict=True):
        trials = seeds[seeds["objective"] == objective].groupby("trial_id", sort=False)
        for index, (trial_id, group) in enumerate(trials):
            curve = _stats.mean_curve(history, list(group["run_id"]), key=m.TRAIN_LOSS)
            label = trial_id if index < MAX_LEGEND_CURVES else None
            (line,) = ax.plot(curve["step"], curve["value"], linewidth=1, label=label)
            _mark_early_stops(ax, group, curve, colour=line.get_color())
        ax.set_title(f"{LABELS[objective]}: train/loss (× = early-stop point)")
        ax.set_xlabel("optimiser step")
        ax.set_ylabel(m.TRAIN_LOSS)
        ax.legend(fontsize=7)
    return [Figure("Learning curves", _save(fig, out_dir, "learning_curves.png"))], []


def _mark_early_stops(ax: Axes, group: pd.DataFrame, curve: pd.DataFrame, *, colour: str) -> None:
    if m.DIAG_EARLY_STOP_STEP not in group or curve.empty:
        return
    for step in group[m.DIAG_EARLY_STOP_STEP].dropna():
        if step < 0:  # -1: the loss never flattened
            continue
        nearest = curve.iloc[(curve["step"] - step).abs().argsort().iloc[0]]
        ax.plot(step, nearest["value"], marker="x", markersize=9, color=colour)


def plot_overspecialisation(
    seeds: pd.DataFrame, *, out_dir: Path
) -> tuple[list[Figure], list[str]]:
    """Peak eval step vs drop from peak per seed run; overspecialised runs ringed in red."""
    needed = (m.DIAG_PEAK_EVAL_STEP, m.DIAG_EVAL_DROP_FROM_PEAK)
    if any(key not in seeds for key in needed):
        return [], ["No overspecialisation scatter: the peak/drop diagnostics were not logged."]
    runs = seeds[seeds[m.DIAG_PEAK_EVAL_STEP] >= 0]
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for objective, group in runs.groupby("objective"):
        ax.scatter(
            group[m.DIAG_PEAK_EVAL_STEP],
            group[m.DIAG_EVAL_DROP_FROM_PEAK],
            color=COLOURS.get(objective, "gray"),
            label=LABELS.get(objective, objective),
        )
    if m.DIAG_OVERSPECIALIZED in runs:
        flagged = runs[runs[m.DIAG_OVERSPECIALIZED] > 0]
        ax.scatter(
            flagged[m.DIAG_PEAK_EVAL_STEP],
            flagged[m.DIAG_EVAL_DROP_FROM_PEAK],
            s=160,
            facecolors="none",
            edgecolors="red",
            label="overspecialised",
        )
    ax.set_xlabel(m.DIAG_PEAK_EVAL_STEP)
    ax.set_ylabel(m.DIAG_EVAL_DROP_FROM_PEAK)
    ax.set_title("Overspecialisation: peak step vs drop")
    ax.legend(fontsize=8)
    return [Figure("Overspecialisation", _save(fig, out_dir, "overspecialisation.png"))], []


def _ci_extent(rows: pd.DataFrame, name: str) -> list[list[float]]:
    """Error-bar lengths below and above each mean: its 95% CI, 0 where there is none."""
    mean = rows[f"{name} mean"].astype(float)
    lo = (mean - rows.get(f"{name} ci_lo", mean).astype(float)).fillna(0).clip(lower=0)
    hi = (rows.get(f"{name} ci_hi", mean).astype(float) - mean).fillna(0).clip(lower=0)
    return [lo.tolist(), hi.tolist()]


def plot_pareto(
    frame: pd.DataFrame, objectives: Sequence[tuple[str, str]], *, out_dir: Path
) -> tuple[list[Figure], list[str]]:
    """The first two objectives' seed means with 95% CIs, one colour per training objective;
    the front (`on_front`) joined and ringed, the control (`control`) starred."""
    (x, x_mode), (y, y_mode) = objectives[:2]
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for objective, rows in frame.groupby("objective", sort=True):
        ax.errorbar(
            rows[f"{x} mean"],
            rows[f"{y} mean"],
            xerr=_ci_extent(rows, x),
            yerr=_ci_extent(rows, y),
            fmt="o",
            capsize=2,
            color=COLOURS.get(str(objective), "gray"),
            label=LABELS.get(str(objective), str(objective)),
        )
    front = frame[frame["on_front"]].sort_values(f"{x} mean")
    ax.plot(front[f"{x} mean"], front[f"{y} mean"], "--", color="tab:red", linewidth=1)
    ax.scatter(
        front[f"{x} mean"], front[f"{y} mean"], s=140, facecolors="none", edgecolors="tab:red"
    )
    control = frame[frame["control"]]
    ax.scatter(
        control[f"{x} mean"],
        control[f"{y} mean"],
        marker="*",
        s=260,
        color=COLOURS[_stats.ICON],
        edgecolors="black",
        zorder=5,
        label="I-Con control",
    )
    ax.set_xlabel(f"{x} ({x_mode})")
    ax.set_ylabel(f"{y} ({y_mode})")
    ax.set_title("Pareto front (red), seed means with 95% CIs")
    ax.legend(fontsize=8)
    notes = []
    if len(objectives) > 2:
        notes.append(
            f"The Pareto plot shows the first two of {len(objectives)} objectives; "
            "the front is over all of them."
        )
    return [Figure("Pareto front", _save(fig, out_dir, "pareto_front.png"))], notes


IMPORTANCE_MIN_TRIALS = 20
IMPORTANCE_MIN_PARAMS = 2


def plot_optuna(
    values: Mapping[str, float],
    trial_params: Mapping[str, Mapping[str, ParamValue]],
    specs: Mapping[str, ParameterSpec],
    *,
    mode: str,
    out_dir: Path,
) -> tuple[list[Figure], list[str]]:
    """Optuna's parameter importance and parallel coordinates, rebuilt from the trial runs.

    values: the leaderboard mean per trial id; only finite ones enter the study.
    """
    kept = {t: v for t, v in values.items() if math.isfinite(v) and trial_params.get(t)}
    names = sorted({n for t in kept for n in trial_params[t]})
    dists = {
        n: _distribution(
            specs.get(n, {}), [trial_params[t][n] for t in kept if n in trial_params[t]]
        )
        for n in names
    }
    dists = {n: d for n, d in dists.items() if d is not None}
    if len(kept) < 2 or not dists:
        return [], ["No Optuna plots: fewer than 2 finished trials or no varying parameters."]
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize" if mode == "max" else "minimize")
    for trial_id, value in kept.items():
        params = {n: v for n, v in trial_params[trial_id].items() if n in dists}
        study.add_trial(
            optuna.trial.create_trial(
                params=params, distributions={n: dists[n] for n in params}, value=value
            )
        )
    figures, notes = [], []
    plots = [("Parallel coordinates (Optuna)", _plot_parallel, "optuna_parallel.png")]
    if len(kept) >= IMPORTANCE_MIN_TRIALS and len(dists) >= IMPORTANCE_MIN_PARAMS:
        importance = ("Parameter importance (Optuna)", _plot_importance, "optuna_importance.png")
        plots.insert(0, importance)
    else:
        notes.append(
            f"No parameter-importance plot: it needs at least {IMPORTANCE_MIN_TRIALS} finished "
            f"trials and {IMPORTANCE_MIN_PARAMS} varying parameters (this sweep: {len(kept)} and "
            f"{len(dists)}); with fewer, a forest's importances are noise."
        )
    for title, plot, name in plots:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Optuna's matplotlib backend is "experimental"
                ax = plot(study)
        except (ValueError, RuntimeError, ZeroDivisionError) as exc:
            notes.append(f"{title} skipped: {exc}")
            continue
        figures.append(Figure(title, _save(ax.figure, out_dir, name)))
    return figures, notes


def _plot_importance(study: optuna.Study) -> Axes:
    return optuna.visualization.matplotlib.plot_param_importances(study)


def _plot_parallel(study: optuna.Study) -> Axes:
    return optuna.visualization.matplotlib.plot_parallel_coordinate(study)


def _distribution(spec: ParameterSpec, observed: Sequence[ParamValue]) -> BaseDistribution | None:
    """The space file's distribution if it holds every observed value, else one inferred."""
    if len({repr(v) for v in observed}) < 2:
        return None  # a parameter that never varied says nothing about importance
    declared = _declared(spec)
    if declared is not None and all(_holds(declared, v) for v in observed):
        return declared
    numbers = [v for v in observed if isinstance(v, int | float) and not isinstance(v, bool)]
    if len(numbers) == len(observed):
        return FloatDistribution(float(min(numbers)), float(max(numbers)))
    return CategoricalDistribution(tuple(sorted(set(observed), key=repr)))


def _declared(spec: ParameterSpec) -> BaseDistribution | None:
    kind = spec.get("type")
    try:
        if kind == "categorical" or "choices" in spec:
            return CategoricalDistribution(tuple(spec["choices"]))
        if kind == "int":
            return IntDistribution(
                int(spec["low"]),
                int(spec["high"]),
                log=bool(spec.get("log")),
                step=int(spec.get("step") or 1),
            )
        if kind == "float":
            return FloatDistribution(
                float(spec["low"]),
                float(spec["high"]),
                log=bool(spec.get("log")),
                step=spec.get("step"),
            )
    except (KeyError, TypeError, ValueError):
        return None
    return None


def _holds(dist: BaseDistribution, value: ParamValue) -> bool:
    try:
        return bool(dist._contains(dist.to_internal_repr(value)))
    except (TypeError, ValueError):
        return False
