"""Orchestration overhead of `rkdo-tune sweep`, and what ASHA saves on a space with a clear answer.

Overhead: N small trials run through the real CLI (a subprocess: Ray Tune +
Optuna + MLflow into a temporary sqlite store, one trial at a time, no
scheduler) against the same N configurations run with `train()` one after
another in one plain Python process (also a subprocess, so both pay a Python
start). The configurations are read back from the sweep's own Ray results and
rebuilt with `trial_config`, so both sides train exactly the same things.

    overhead per trial = (sweep wall - direct wall) / N

Measured at several N (--trials 2 6) and trial lengths (--epochs 1 3), the
sweep's total overhead is fitted as F + N (a + b epochs): F is paid once per
sweep (Ray start and stop, the first worker, the parent run), a once per
trial (its MLflow runs, scheduling) and b once per epoch (a report, a
checkpoint and an MLflow batch per evaluation). That split is what the
projection to 60 s trials needs. The sweep driver's extra imports,
`ray.init()` and a new worker's imports are also timed alone, in fresh
processes.

ASHA: the same sweep of `spaces/asha_clear.yaml` with `scheduler.kind` asha
and none; reports the fraction of trial-steps ASHA saved and whether both
found the same best configuration.

    python benchmarks/sweep_overhead.py --help
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _common import format_table, load_average, machine_info, summarize, write_json
from _startup_probe import startup_probe

from rkdo_tune.config import TrialConfig
from rkdo_tune.sweep.space import load_space, trial_config
from rkdo_tune.training import train
from rkdo_tune.training.run_setup import set_cpu_threads

SPACES = Path(__file__).resolve().parent / "spaces"
OVERHEAD_SPACE = SPACES / "sweep_overhead.yaml"
ASHA_SPACE = SPACES / "asha_clear.yaml"
RKDO_TUNE = str(Path(sys.executable).with_name("rkdo-tune"))
TARGET_SECONDS_PER_TRIAL = 3.0
TARGET_PERCENT_AT_60S = 5.0  # issue 16: from 10% (measured 13%) once per-step rows are strided


def _run(command: list[str], *, cwd: Path, what: str) -> tuple[float, str]:
    """Wall seconds and stdout of a subprocess; a failure raises with its stderr tail."""
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return wall, done.stdout


def read_trials(experiment: Path, metric: str) -> list[dict[str, Any]]:
    """Each trial's params, epochs and steps reached, in-trainable seconds and last metric."""
    trials = []
    for directory in sorted(p for p in experiment.iterdir() if (p / "result.json").is_file()):
        reports = [
            json.loads(line) for line in (directory / "result.json").read_text().splitlines()
        ]
        last = reports[-1] if reports else {}
        trials.append(
            {
                "params": json.loads((directory / "params.json").read_text()),
                "epochs": int(last.get("epoch", 0)),
                "steps": int(last.get("step", 0)),
                "trainable_s": float(last.get("time_total_s", 0.0)),
                "metric": last.get(metric),
            }
        )
    return trials


def run_sweep(
    space: Path, sets: Sequence[str], *, name: str, workdir: Path, args: argparse.Namespace
) -> dict[str, Any]:
    """One `rkdo-tune sweep` subprocess; its wall time and the trials it ran."""
    storage = workdir / "ray"
    command = [
        RKDO_TUNE, "sweep", "--space", str(space), "--name", name,
        "--storage", str(storage), "--tracking-uri", f"sqlite:///{workdir / 'mlflow.db'}",
        "--max-concurrent", "1", "--cpus-per-trial", str(args.cpus),
        "--gpus-per-trial", str(args.gpus),
        *[part for s in sets for part in ("--set", s)],
    ]  # fmt: skip
    wall, stdout = _run(command, cwd=workdir, what=f"sweep {name}")
    metric = load_space(space, overrides=list(sets)).metric
    reused = "floors reused from" in stdout
    return {"wall_s": wall, "trials": read_trials(storage / name, metric), "floors_reused": reused}


def direct_configs(
    space: Path, sets: Sequence[str], trials: Sequence[dict[str, Any]], *, gpus: float
) -> list[dict[str, Any]]:
    """The TrialConfigs the sweep trained (as dicts), rebuilt from the params it used."""
    loaded = load_space(space, overrides=list(sets))
    configs = []
    for trial in trials:
        for seed in loaded.seeds:
            config = trial_config(loaded, trial["params"], seed=seed)
            if gpus == 0 and config.device == "auto":  # as sweep_trial does
                config = dataclasses.replace(config, device="cpu")
            configs.append(config.to_dict())
    return configs


def run_direct(configs: list[dict[str, Any]], *, workdir: Path, threads: int) -> dict[str, Any]:
    """The same configs through `train()` in one fresh process (see `direct_main`)."""
    spec = workdir / f"direct-{time.monotonic_ns()}.json"
    spec.write_text(json.dumps({"configs": configs, "threads": threads}))
    command = [sys.executable, str(Path(__file__).resolve()), "--direct-spec", str(spec)]
    wall, stdout = _run(command, cwd=workdir, what="direct runs")
    return {"wall_s": wall, **json.loads(stdout.strip().splitlines()[-1])}


def direct_main(spec_path: str) -> dict[str, Any]:
    """Subprocess body: train every config in turn; seconds per config."""
    spec = json.loads(Path(spec_path).read_text())
    set_cpu_threads(spec["threads"])  # what sweep_trial does
    seconds = []
    for values in spec["configs"]:
        start = time.perf_counter()
        train(TrialConfig(**values))
        seconds.append(time.perf_counter() - start)
    return {"train_s": seconds}


def overhead_at(trials: int, epochs: int, args: argparse.Namespace, workdir: Path) -> dict:
    """Sweep vs direct for N trials of one length; repeats alternate the order (S D, D S, ...)."""
    sets = [
        f"base.epochs={epochs}",
        f"base.steps_per_epoch={args.steps}",
        f"search.num_samples={trials}",
    ]
    sweeps, directs, configs = [], [], None
    warm_up_s = None
    if args.warm_floors:  # what every sweep after the first in an experiment finds
        warm = [*sets[:-1], "search.num_samples=1"]
        name = f"floors-n{trials}-e{epochs}"
        warm_up_s = run_sweep(OVERHEAD_SPACE, warm, name=name, workdir=workdir, args=args)["wall_s"]
    for repeat in range(args.repeats):
        order = ("sweep", "direct") if repeat % 2 == 0 or configs is None else ("direct", "sweep")
        for side in order:
            if side == "sweep":
                name = f"overhead-n{trials}-e{epochs}-r{repeat}"
                sweeps.append(
                    run_sweep(OVERHEAD_SPACE, sets, name=name, workdir=workdir, args=args)
                )
                configs = configs or direct_configs(
                    OVERHEAD_SPACE, sets, sweeps[-1]["trials"], gpus=args.gpus
                )
            else:
                directs.append(run_direct(configs, workdir=workdir, threads=int(args.cpus)))
    sweep_wall = summarize([s["wall_s"] for s in sweeps])["median"]
    direct_wall = summarize([d["wall_s"] for d in directs])["median"]
    train_s = summarize([sum(d["train_s"]) for d in directs])["median"]
    trainable_s = summarize([sum(t["trainable_s"] for t in s["trials"]) for s in sweeps])["median"]
    return {
        "epochs": epochs,
        "steps_per_epoch": args.steps,
        "trials": trials,
        "sweep_wall_s": [s["wall_s"] for s in sweeps],
        "direct_wall_s": [d["wall_s"] for d in directs],
        "direct_train_s": train_s,
        "sweep_trainable_s": trainable_s,
        "overhead_s": sweep_wall - direct_wall,
        "overhead_per_trial_s": (sweep_wall - direct_wall) / trials,
        "overhead_percent": 100 * (sweep_wall - direct_wall) / direct_wall,
        "direct_s_per_trial": train_s / trials,
        "trial_epochs": [t["epochs"] for t in sweeps[-1]["trials"]],
        "floors_warm_up_s": warm_up_s,  # None: the first measured sweep computed the floors
        "floors_reused": [s["floors_reused"] for s in sweeps],
    }


def fit_overhead(points: Sequence[dict[str, Any]], *, trial_seconds: float) -> dict[str, Any]:
    """Total overhead = F + N (a + b epochs), least squares, and the projection to 60 s trials.

    F needs two values of N and b two trial lengths; a part that cannot be
    told apart is None and folded into a. A 60 s trial keeps the measured
    epoch length, so it has 60 / (direct seconds per epoch) epochs.
    """
    n = np.array([p["trials"] for p in points], dtype=float)
    epochs = np.array([p["epochs"] for p in points], dtype=float)
    columns = {"fixed_per_sweep_s": np.ones_like(n), "per_trial_s": n, "per_epoch_s": n * epochs}
    if len(set(n)) < 2:
        del columns["fixed_per_sweep_s"]
    if len(set(epochs)) < 2:
        del columns["per_epoch_s"]
    total = np.array([p["overhead_s"] for p in points])
    solution = np.linalg.lstsq(np.column_stack(list(columns.values())), total, rcond=None)[0]
    fit: dict[str, Any] = {"fixed_per_sweep_s": None, "per_epoch_s": None}
    fit.update({name: float(value) for name, value in zip(columns, solution, strict=True)})
    seconds_per_epoch = float(np.mean([p["direct_s_per_trial"] / p["epochs"] for p in points]))
    epochs_at = trial_seconds / seconds_per_epoch
    marginal = fit["per_trial_s"] + (fit["per_epoch_s"] or 0.0) * epochs_at
    fixed = fit["fixed_per_sweep_s"] or 0.0
    fit.update(
        {
            "direct_s_per_epoch": seconds_per_epoch,
            "epochs_in_60s_trial": epochs_at,
            "marginal_per_60s_trial_s": marginal,
            "percent_at_60s": {
                str(count): 100 * (marginal + fixed / count) / trial_seconds for count in (2, 3, 10)
            },
            "trials_for_target": trials_for_target(fixed, marginal, trial_seconds=trial_seconds),
        }
    )
    return fit


def trials_for_target(fixed: float, marginal: float, *, trial_seconds: float) -> int | None:
    """The fewest trials per sweep whose overhead, (fixed + N marginal) / (N trial_seconds),
    is within TARGET_PERCENT_AT_60S; None when the per-trial part alone exceeds it."""
    room = TARGET_PERCENT_AT_60S / 100 * trial_seconds - marginal
    if room <= 0:
        return None
    return max(1, math.ceil(fixed / room))


def asha_comparison(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """ASHA against full budgets on asha_clear.yaml: trial-steps saved, same winner or not."""
    outcome: dict[str, Any] = {}
    for kind in ("none", "asha"):
        sets = [f"scheduler.kind={kind}", f"base.epochs={args.asha_epochs}"]
        run = run_sweep(ASHA_SPACE, sets, name=f"asha-{kind}", workdir=workdir, args=args)
        ranked = [t for t in run["trials"] if t["metric"] is not None]
        best = max(ranked, key=lambda t: t["metric"])
        outcome[kind] = {
            "wall_s": run["wall_s"],
            "trial_steps": sum(t["steps"] for t in run["trials"]),
            "trial_epochs": sum(t["epochs"] for t in run["trials"]),
            "trials": run["trials"],
            "best_params": best["params"],
            "best_metric": best["metric"],
        }
    none, asha = outcome["none"], outcome["asha"]
    outcome["steps_saved_fraction"] = 1 - asha["trial_steps"] / none["trial_steps"]
    outcome["wall_saved_fraction"] = 1 - asha["wall_s"] / none["wall_s"]
    outcome["same_best"] = asha["best_params"] == none["best_params"]
    return outcome


def overhead_rows(points: Sequence[dict[str, Any]]) -> list[list[str]]:
    return [
        [
            p["epochs"],
            p["steps_per_epoch"],
            p["trials"],
            " ".join(f"{w:.1f}" for w in p["sweep_wall_s"]),
            " ".join(f"{w:.1f}" for w in p["direct_wall_s"]),
            f"{p['direct_train_s']:.1f}",
            f"{p['sweep_trainable_s']:.1f}",
            f"{p['overhead_per_trial_s']:.2f}",
            f"{p['overhead_percent']:.0f}%",
        ]
        for p in points
    ]


OVERHEAD_HEADERS = (
    "epochs", "steps/ep", "N", "sweep wall s", "direct wall s", "train() s",
    "in-trainable s", "overhead s/trial", "overhead %",
)  # fmt: skip


def report_lines(payload: dict[str, Any]) -> list[str]:
    """The ratio lines: overhead per trial, the 60 s projection, Ray start-up, ASHA."""
    lines = []
    for p in payload["overhead"]:
        verdict = "met" if p["overhead_per_trial_s"] <= TARGET_SECONDS_PER_TRIAL else "missed"
        lines.append(
            f"RATIO sweep/direct wall, N={p['trials']}, {p['epochs']} epoch(s) x "
            f"{p['steps_per_epoch']} steps: "
            f"{1 + p['overhead_percent'] / 100:.2f}x, overhead {p['overhead_per_trial_s']:.2f} s "
            f"per trial (target <= {TARGET_SECONDS_PER_TRIAL:g} s: {verdict})"
        )
    for p in payload["overhead"]:
        inside = (p["sweep_trainable_s"] - p["direct_train_s"]) / p["trials"]
        lines.append(
            f"  N={p['trials']}, {p['epochs']} epoch(s): {inside:.2f} s per trial inside the "
            f"trainable (MLflow runs, reports, checkpoints), the rest outside it"
        )
    fit = payload["fit"]
    parts = [f"{fit['per_trial_s']:.2f} s per trial"]
    if fit["per_epoch_s"] is not None:
        parts.append(f"{fit['per_epoch_s']:.2f} s per epoch")
    if fit["fixed_per_sweep_s"] is not None:
        parts.insert(0, f"{fit['fixed_per_sweep_s']:.1f} s per sweep")
    verdict = "met" if fit["per_trial_s"] <= TARGET_SECONDS_PER_TRIAL else "missed"
    percents = ", ".join(f"N={k}: {v:.1f}%" for k, v in fit["percent_at_60s"].items())
    needed = fit["trials_for_target"]
    reach = f"met from N = {needed}" if needed else "missed at any N: the per-trial part exceeds it"
    lines.append(
        f"fit: overhead = {' + '.join(parts)} (per-trial part vs target <= "
        f"{TARGET_SECONDS_PER_TRIAL:g} s: {verdict}); a 60 s trial of "
        f"{fit['epochs_in_60s_trial']:.0f} such epochs adds {fit['marginal_per_60s_trial_s']:.1f} "
        f"s, so with the per-sweep part shared over N trials: {percents} "
        f"(target <= {TARGET_PERCENT_AT_60S:g}%: {reach})"
    )
    probe = payload["startup_probe"]
    lines.append(
        f"fresh processes: the sweep driver imports {probe['import_driver_s']:.1f} s (ray, tune, "
        f"optuna, mlflow; no torch) against {probe['import_direct_side_s']:.1f} s for a direct "
        f"run (torch, the trainer), ray.init() takes {probe['init_s']:.1f} s "
        f"and ray.shutdown() {probe['shutdown_s']:.1f} s, once per sweep; a new worker imports "
        f"{probe['import_worker_s']:.1f} s (torch, tune, mlflow, trial code) before its first trial"
    )
    asha = payload.get("asha")
    if asha:
        lines.append(
            f"ASHA vs none on asha_clear: trial-steps {asha['asha']['trial_steps']} vs "
            f"{asha['none']['trial_steps']} ({100 * asha['steps_saved_fraction']:.0f}% saved), "
            f"wall {asha['asha']['wall_s']:.0f} s vs {asha['none']['wall_s']:.0f} s; "
            f"best {asha['asha']['best_params']} vs {asha['none']['best_params']}: "
            f"{'same' if asha['same_best'] else 'DIFFERENT'}"
        )
    return lines


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--trials", type=int, nargs="+", default=[2, 6], help="N: trials per sweep (<=8)."
    )
    parser.add_argument(
        "--epochs", type=int, nargs="+", default=[1, 3], help="Trial lengths to measure."
    )
    parser.add_argument("--steps", type=int, default=10, help="Steps per epoch.")
    parser.add_argument("--repeats", type=int, default=1, help="Sweep/direct pairs per length.")
    parser.add_argument("--cpus", type=float, default=2, help="CPUs per trial (= torch threads).")
    parser.add_argument("--gpus", type=float, default=0, help="GPUs per trial.")
    parser.add_argument("--asha-epochs", type=int, default=4, help="Full budget in the ASHA part.")
    parser.add_argument("--no-asha", action="store_true", help="Skip the ASHA comparison.")
    parser.add_argument(
        "--warm-floors",
        action="store_true",
        help="First run a throwaway 1-trial sweep of the same settings, so that the measured "
        "sweeps reuse its floors (as every sweep after the first in an experiment does).",
    )
    parser.add_argument("--json-out", help="Write every measurement to this JSON file.")
    parser.add_argument("--keep", help="Keep sweep outputs in this directory (default: temp).")
    parser.add_argument("--direct-spec", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not all(1 <= n <= 8 for n in args.trials):
        parser.error("--trials must be between 1 and 8 (the overhead grid has 8 points)")
    if min(*args.epochs, args.steps, args.repeats, args.asha_epochs) < 1 or args.cpus <= 0:
        parser.error("--epochs, --steps, --repeats, --asha-epochs must be >= 1, --cpus > 0")
    return args


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    device = torch.device("cuda" if args.gpus > 0 else "cpu")
    payload: dict[str, Any] = {"machine": machine_info(device), "load_start": load_average()}
    payload["settings"] = {k: v for k, v in vars(args).items() if k not in ("direct_spec",)}
    print(f"machine: {payload['machine']}")
    print(f"load average at start: {payload['load_start']}")
    payload["startup_probe"] = startup_probe(workdir)
    payload["overhead"] = [
        overhead_at(trials, epochs, args, workdir)
        for trials in args.trials
        for epochs in args.epochs
    ]
    payload["fit"] = fit_overhead(payload["overhead"], trial_seconds=60.0)
    if not args.no_asha:
        payload["asha"] = asha_comparison(args, workdir)
    print(format_table(OVERHEAD_HEADERS, overhead_rows(payload["overhead"])))
    for line in report_lines(payload):
        print(line)
    payload["load_end"] = load_average()
    print(f"load average at end: {payload['load_end']}")
    return payload


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.direct_spec:
        print(json.dumps(direct_main(args.direct_spec)))
        return 0
    if args.keep:
        Path(args.keep).mkdir(parents=True, exist_ok=True)
        payload = run(args, Path(args.keep).resolve())
    else:
        with tempfile.TemporaryDirectory(prefix="rkdo-sweep-bench-") as directory:
            payload = run(args, Path(directory))
    write_json(args.json_out, payload)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
