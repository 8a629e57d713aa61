"""Training diagnostics computed from a trial's metric history (pure numpy).

- loss slopes over a trailing window (the paper's "slope of L(t)");
- the early-stop point: where the slope of L(t) flattens (paper §6.2.4);
- overspecialisation: the eval metric peaks, then falls while the train loss
  keeps falling (the paper's "large alpha over-specialises");
- compute-to-target: the eval step from which the value stays at a target value
  (censored at the run's budget when it never does).

Conventions for the `diag/*` values that `summarize_history` returns (every
value is a float, so it can go to MLflow as is):

- a step that does not exist ("never stopped", "no eval") is -1.0;
- a value that does not exist (no finite eval value) is NaN;
- a flag is 1.0 (true) or 0.0 (false).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rkdo_tune.errors import UsageError
from rkdo_tune.metrics import (
    DIAG_EARLY_STOP_STEP,
    DIAG_EVAL_DROP_FROM_PEAK,
    DIAG_OVERSPECIALIZED,
    DIAG_PEAK_EVAL_STEP,
    DIAG_PEAK_EVAL_VALUE,
    DIAG_STEPS_TO_TARGET,
    DIAG_TARGET_CENSORED,
)

MODES = ("max", "min")
NO_STEP = -1.0  # the diag/* value of a step that does not exist


def _as_1d(values, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    return array


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")


def _check_window(window: int) -> None:
    # Reached from the config's slope_window, so a bad value is the user's mistake.
    if int(window) != window or window < 2:
        raise UsageError(
            f"key 'slope_window' has value {window!r}, but a slope needs a window of >= 2 steps"
        )


def _safe_log(values: np.ndarray) -> np.ndarray:
    """log(values), with NaN where a value is not positive (or not finite)."""
    out = np.full(values.shape, np.nan)
    good = np.isfinite(values) & (values > 0)
    out[good] = np.log(values[good])
    return out


def sliding_slope(values: np.ndarray, *, window: int) -> np.ndarray:
    """Least-squares slope (per index) of the trailing `window` values at each index.

    values: (N,) -> (N,). Entry i is the slope of the line fitted to
    values[i-window+1 : i+1] against their indices; the first window-1
    entries are NaN, and so is any window holding a non-finite value.
    Vectorised with cumulative sums: O(N).
    """
    _check_window(window)
    y = _as_1d(values, "values")
    n = y.size
    out = np.full(n, np.nan)
    if n < window:
        return out
    bad = ~np.isfinite(y)
    y0 = np.where(bad, 0.0, y)
    idx = np.arange(n, dtype=np.float64)

    def window_sums(a: np.ndarray) -> np.ndarray:
        c = np.concatenate(([0.0], np.cumsum(a)))
        return c[window:] - c[:-window]  # sum over each window ending at window-1 .. n-1

    sum_y = window_sums(y0)
    sum_iy = window_sums(idx * y0)
    n_bad = window_sums(bad.astype(np.float64))
    # Centre x on each window's mean index c: slope = sum((i - c) y) / sum((i - c)^2).
    centre = np.arange(window - 1, n, dtype=np.float64) - (window - 1) / 2.0
    denom = window * (window * window - 1) / 12.0
    slope = (sum_iy - centre * sum_y) / denom
    slope[n_bad > 0] = np.nan
    out[window - 1 :] = slope
    return out


def loss_slopes(losses: np.ndarray, *, window: int) -> tuple[np.ndarray, np.ndarray]:
    """(slope of the loss, slope of log(loss)) over a trailing window; losses: (N,) -> 2 x (N,).

    The log-loss slope is the relative rate of change, comparable across
    objectives whose losses differ in scale (RKDO's sum over levels vs I-Con).
    A non-positive loss has no log: windows holding one are NaN.
    """
    y = _as_1d(losses, "losses")
    return sliding_slope(y, window=window), sliding_slope(_safe_log(y), window=window)


def _block_slopes(x: np.ndarray, y: np.ndarray, window: int) -> np.ndarray:
    """Least-squares slope of y against x over consecutive non-overlapping blocks."""
    blocks = x.size // window
    xb = x[: blocks * window].reshape(blocks, window)
    yb = y[: blocks * window].reshape(blocks, window)
    xc = xb - xb.mean(axis=1, keepdims=True)
    yc = yb - yb.mean(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (xc * yc).sum(axis=1) / (xc * xc).sum(axis=1)


def early_stop_step(
    steps: np.ndarray,
    losses: np.ndarray,
    *,
    window: int,
    threshold: float,
    patience: int,
    use_log: bool = True,
) -> int | None:
    """The step at which the slope of L(t) has flattened, or None; steps, losses: (N,).

    The history is cut into consecutive non-overlapping windows of `window`
    entries; each window gets the least-squares slope of the loss (of
    log(loss) when `use_log`, scale-free) against its steps, i.e. a slope per
    optimiser step. The answer is the last step of the `patience`-th
    consecutive window whose |slope| < threshold: the step at which a trainer
    watching the loss could actually stop. A window holding a non-finite (or,
    with `use_log`, non-positive) loss is never flat. A trailing partial
    window is ignored.
    """
    _check_window(window)
    if not threshold > 0:
        raise UsageError(f"key 'early_stop_threshold' has value {threshold!r}, but it must be > 0")
    if int(patience) != patience or patience < 1:
        raise UsageError(f"key 'early_stop_patience' has value {patience!r}, but it must be >= 1")
    x = _as_1d(steps, "steps")
    y = _as_1d(losses, "losses")
    if x.size != y.size:
        raise ValueError(f"steps and losses differ in length: {x.size} vs {y.size}")
    if use_log:
        y = _safe_log(y)
    slopes = _block_slopes(x, y, window)
    flat = np.abs(slopes) < threshold  # NaN compares False: never flat
    run = 0
    for block, is_flat in enumerate(flat):
        run = run + 1 if is_flat else 0
        if run == patience:
            return int(x[(block + 1) * window - 1])
    return None


@dataclass(frozen=True)
class OverspecialisationReport:
    """Peak of an eval metric, how far it fell by the end, and whether that is overspecialisation.

    `peak_step` is None (and the values NaN) when the eval history has no
    finite value. `drop` is >= 0 in the metric's own units.
    `train_loss_fell_after_peak` is True when the train loss kept falling
    after the peak step. `overspecialized` = drop >= delta and that.
    """

    peak_step: int | None
    peak_value: float
    final_value: float
    drop: float
    train_loss_fell_after_peak: bool
    overspecialized: bool


def _train_loss_fell_after(peak_step: float, train_x: np.ndarray, train_y: np.ndarray) -> bool:
    """Whether the train loss kept falling after `peak_step` (finite points only)."""
    keep = np.isfinite(train_x) & np.isfinite(train_y)
    x, y = train_x[keep], train_y[keep]
    after = x > peak_step
    if not after.any():
        return False
    if after.sum() >= 2:
        xa, ya = x[after], y[after]
        xc = xa - xa.mean()
        denom = (xc * xc).sum()
        if denom > 0 and (xc * (ya - ya.mean())).sum() / denom < 0:
            return True
    at_or_before = ~after
    # The train loss at the peak: the last logged one at or before it (else the first).
    loss_at_peak = y[at_or_before][-1] if at_or_before.any() else y[0]
    return bool(y[-1] < loss_at_peak)


def overspecialisation(
    eval_steps: np.ndarray,
    eval_values: np.ndarray,
    train_steps: np.ndarray,
    train_losses: np.ndarray,
    *,
    mode: str = "max",
    delta: float = 0.02,
) -> OverspecialisationReport:
    """Find the eval peak and flag overspecialisation (eval falls, train loss still falls).

    eval_steps, eval_values: (E,); train_steps, train_losses: (N,).
    The peak is the first best finite eval value (argmax for mode "max",
    argmin for "min"). The drop is peak - final ("max") or final - peak
    ("min"), with final the last finite eval value. The flag is raised when
    the drop >= `delta` and the train loss kept falling after the peak step:
    the slope fitted to the train losses logged after it is negative, or the
    last train loss is below the train loss at the peak. Histories are taken
    in step order, as logged.
    """
    _check_mode(mode)
    ex = _as_1d(eval_steps, "eval_steps")
    ey = _as_1d(eval_values, "eval_values")
    tx = _as_1d(train_steps, "train_steps")
    ty = _as_1d(train_losses, "train_losses")
    if ex.size != ey.size:
        raise ValueError(f"eval_steps and eval_values differ in length: {ex.size} vs {ey.size}")
    if tx.size != ty.size:
        raise ValueError(f"train_steps and train_losses differ in length: {tx.size} vs {ty.size}")
    finite = np.isfinite(ey)
    if not finite.any():
        return OverspecialisationReport(None, np.nan, np.nan, np.nan, False, False)
    ex, ey = ex[finite], ey[finite]
    peak = int(np.argmax(ey) if mode == "max" else np.argmin(ey))
    peak_value, final_value = float(ey[peak]), float(ey[-1])
    drop = peak_value - final_value if mode == "max" else final_value - peak_value
    fell = _train_loss_fell_after(ex[peak], tx, ty)
    return OverspecialisationReport(
        peak_step=int(ex[peak]),
        peak_value=peak_value,
        final_value=final_value,
        drop=float(drop),
        train_loss_fell_after_peak=fell,
        overspecialized=bool(drop >= delta and fell),
    )


def steps_to_target(
    eval_steps: np.ndarray,
    eval_values: np.ndarray,
    *,
    target: float,
    mode: str = "max",
    consecutive: int | None = None,
) -> int | None:
    """The eval step from which the value counts as having reached `target`, else None.

    eval_steps, eval_values: (E,), in step order. A value reaches the target when it
    is >= it ("max") or <= it ("min"); NaN never does. The first crossing of a noisy
    curve comes too early, so "reached" means the value *stays* there:

    - `consecutive` None (the default): for every later evaluation, to the end of the
      run; the answer is the first step of the run's final reaching stretch;
    - `consecutive` k: for k consecutive evaluations, or to the end of the run if
      fewer remain; the answer is the first step of the first such stretch.
      k = 1 is the plain first crossing.

    A curve that never reaches it is censored: None (the caller records its budget).
    """
    _check_mode(mode)
    if consecutive is not None and (int(consecutive) != consecutive or consecutive < 1):
        raise ValueError(f"consecutive must be an integer >= 1 or None, got {consecutive!r}")
    x = _as_1d(eval_steps, "eval_steps")
    y = _as_1d(eval_values, "eval_values")
    if x.size != y.size:
        raise ValueError(f"eval_steps and eval_values differ in length: {x.size} vs {y.size}")
    reached = y >= target if mode == "max" else y <= target  # NaN never reaches
    # run[i]: how many evaluations from i on reach the target without a break.
    run = np.zeros(x.size + 1, dtype=np.int64)
    for i in range(x.size - 1, -1, -1):
        run[i] = run[i + 1] + 1 if reached[i] else 0
    to_end = run[:-1] == np.arange(x.size, 0, -1)  # reaches from i to the last evaluation
    if consecutive is None:
        hits = np.flatnonzero(to_end)
    else:
        hits = np.flatnonzero(reached & ((run[:-1] >= consecutive) | to_end))
    return int(x[hits[0]]) if hits.size else None


def target_censoring(
    eval_steps: np.ndarray,
    eval_values: np.ndarray,
    *,
    target: float,
    budget: float,
    mode: str = "max",
    consecutive: int | None = None,
) -> tuple[float, bool]:
    """(steps, censored) of one run: its `steps_to_target`, or its `budget` and True.

    A run that never reaches the target is not dropped: it is right-censored at its
    budget (it needed more than `budget` steps, if it ever gets there).
    """
    hit = steps_to_target(
        eval_steps, eval_values, target=target, mode=mode, consecutive=consecutive
    )
    return (float(budget), True) if hit is None else (float(hit), False)


def summarize_history(
    *,
    train_steps: np.ndarray,
    train_losses: np.ndarray,
    eval_steps: np.ndarray,
    eval_values: np.ndarray,
    mode: str = "max",
    window: int,
    threshold: float,
    patience: int,
    use_log: bool = True,
    delta: float = 0.02,
    target: float | None = None,
) -> dict[str, float]:
    """The once-per-trial diag/* metrics of one history, all as floats.

    `eval_values` is the monitored eval metric (e.g. eval/linear_acc) and
    `mode` its direction (metrics.MODE_OF). Keys: DIAG_EARLY_STOP_STEP
    (-1 if the loss never flattened), DIAG_PEAK_EVAL_STEP (-1 if no finite
    eval), DIAG_PEAK_EVAL_VALUE and DIAG_EVAL_DROP_FROM_PEAK (NaN if no
    finite eval), DIAG_OVERSPECIALIZED (1.0 or 0.0); with a `target`, also
    DIAG_STEPS_TO_TARGET (`steps_to_target`'s rule) and DIAG_TARGET_CENSORED: a run
    that never reached it is censored at its last step (the steps value), flag 1.0.
    """
    stop = early_stop_step(
        train_steps,
        train_losses,
        window=window,
        threshold=threshold,
        patience=patience,
        use_log=use_log,
    )
    report = overspecialisation(
        eval_steps, eval_values, train_steps, train_losses, mode=mode, delta=delta
    )
    out = {
        DIAG_EARLY_STOP_STEP: NO_STEP if stop is None else float(stop),
        DIAG_PEAK_EVAL_STEP: NO_STEP if report.peak_step is None else float(report.peak_step),
        DIAG_PEAK_EVAL_VALUE: report.peak_value,
        DIAG_EVAL_DROP_FROM_PEAK: report.drop,
        DIAG_OVERSPECIALIZED: 1.0 if report.overspecialized else 0.0,
    }
    if target is not None:
        ends = [np.max(a) for a in (_as_1d(train_steps, "s"), _as_1d(eval_steps, "e")) if a.size]
        budget = float(max(ends)) if ends else NO_STEP
        steps, censored = target_censoring(
            eval_steps, eval_values, target=target, budget=budget, mode=mode
        )
        out[DIAG_STEPS_TO_TARGET] = steps
        out[DIAG_TARGET_CENSORED] = 1.0 if censored else 0.0
    return out
