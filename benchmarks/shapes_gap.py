"""How far learned features get above raw pixels on `shapes` (issue 18 §1).

One table, on the same data, protocol and evaluation as a sweep's floors:

- the raw-pixel floor: the protocol's standardised linear probe (C tuned by CV)
  and cosine 5-NN on the flattened pixels (`training.floors.raw_pixel_scores`);
- the random-init floor and (unless `--no-ceiling`) the supervised ceiling of
  `small_cnn`, as a sweep computes them (`compute_references`, first seed);
- each objective (default: rkdo and icon at their default settings), trained by
  `rkdo_tune.training.train` for `--steps` steps at `--batch-size`, once per
  seed, scored by the run's own final evaluation (`eval/linear_acc` on the
  head's embedding, `eval/knn_acc`, and the probe on the backbone features).

The gap is each arm's mean `eval/linear_acc` over seeds minus the pixel floor's.
The issue's targets: pixel probe <= 0.3 at 10 classes, gap >= 0.2 for both arms.

    python benchmarks/shapes_gap.py --help
    python benchmarks/shapes_gap.py --steps 300 --seeds 42 123 456 --threads 1 --json-out out.json

On 2 CPU cores that is about 20 minutes; benchmarks/README.md §6 runs it as one
command per objective (the second with `--no-ceiling`).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from _common import format_table, load_average, machine_info, write_json

from rkdo_tune import metrics as m
from rkdo_tune.config import TrialConfig
from rkdo_tune.data import ImageData, load_dataset
from rkdo_tune.floors import RANDOM_INIT, RAW_PIXELS, SUPERVISED
from rkdo_tune.training import train
from rkdo_tune.training.floors import compute_references
from rkdo_tune.training.run_setup import load_data

TARGET_PIXEL_PROBE = 0.3  # at 10 classes
TARGET_GAP = 0.2
COLUMNS = (m.EVAL_LINEAR_ACC, m.EVAL_KNN_ACC, m.EVAL_LINEAR_ACC_BACKBONE)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--steps", type=int, default=300, help="optimiser steps per run")
    p.add_argument("--seeds", type=int, nargs="+", default=[42, 123, 456])
    p.add_argument("--objectives", nargs="+", default=["rkdo", "icon"])
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--size", type=int, default=32, help="image size (synthetic_size)")
    p.add_argument("--classes", type=int, default=10)
    p.add_argument(
        "--samples", type=int, default=2500, help="images; 2500 leave 500 to test (one probe split)"
    )
    p.add_argument("--protocol", default="full", help="evaluation protocol (the floors' too)")
    p.add_argument("--model", default="small_cnn")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    p.add_argument("--no-ceiling", action="store_true", help="skip the supervised ceiling")
    p.add_argument("--json-out", default=None)
    return p.parse_args(argv)


def make_config(args: argparse.Namespace, objective: str, seed: int) -> TrialConfig:
    """One run of `args.steps` steps: a single epoch, evaluated once at its end."""
    return TrialConfig(
        objective=objective,
        dataset="shapes",
        synthetic_size=args.size,
        synthetic_classes=args.classes,
        synthetic_samples=args.samples,
        model=args.model,
        protocol=args.protocol,
        epochs=1,
        steps_per_epoch=args.steps,
        batch_size=args.batch_size,
        seed=seed,
        device=args.device,
    )


def _pick(scores: dict[str, float]) -> dict[str, float]:
    return {key: float(scores[key]) for key in COLUMNS if key in scores}


def run_arm(args: argparse.Namespace, objective: str, data: ImageData) -> list[dict[str, Any]]:
    """One training run per seed: its scores, steps and wall time."""
    runs = []
    for seed in args.seeds:
        result = train(make_config(args, objective, seed), data=data)
        scores = _pick(result.metrics)
        runs.append({"seed": seed, "status": result.status, "steps": result.steps, **scores})
        runs[-1]["seconds"] = round(result.wall_seconds, 1)
        print(f"  {objective} seed {seed}: {scores} ({result.wall_seconds:.0f} s)", flush=True)
    return runs


def spread(values: Sequence[float]) -> dict[str, float]:
    """Mean, sample standard deviation, min and max over seeds."""
    array = np.asarray(values, dtype=float)
    sd = float(array.std(ddof=1)) if array.size > 1 else float("nan")
    return {
        "mean": float(array.mean()),
        "sd": sd,
        "min": float(array.min()),
        "max": float(array.max()),
    }


def _cell(values: dict[str, float] | float | None) -> str:
    if values is None:
        return "-"
    if isinstance(values, dict):
        return f"{values['mean']:.3f} ± {values['sd']:.3f}"
    return f"{values:.3f}"


def table(references: dict[str, dict[str, float]], arms: dict[str, list[dict]]) -> str:
    rows = []
    for kind, scores in references.items():
        rows.append([kind, "-", *[_cell(scores.get(key)) for key in COLUMNS]])
    for objective, runs in arms.items():
        cells = [
            _cell(spread([r[key] for r in runs])) if key in runs[0] else "-" for key in COLUMNS
        ]
        rows.append([objective, len(runs), *cells])
    return format_table(["features", "seeds", *COLUMNS], rows)


def references_of(args: argparse.Namespace, data: ImageData) -> dict[str, dict[str, float]]:
    """The raw-pixel and random-init floors and (unless --no-ceiling) the supervised ceiling."""
    first = make_config(args, args.objectives[0], args.seeds[0])
    found = compute_references(
        first, data=data, ceiling_max_steps=-1 if args.no_ceiling else args.steps
    )
    kinds = (RAW_PIXELS, RANDOM_INIT, SUPERVISED)
    return {kind: _pick(found.scores[kind]) for kind in kinds if kind in found.scores}


def report_gaps(references: dict[str, dict[str, float]], arms: dict[str, list[dict]]) -> dict:
    """Print the PIXEL and GAP lines; return each arm's mean linear probe minus the pixel one."""
    pixel = references[RAW_PIXELS]
    print(
        f"PIXEL linear {pixel[m.EVAL_LINEAR_ACC]:.3f} (target <= {TARGET_PIXEL_PROBE}), "
        f"5-NN {pixel[m.EVAL_KNN_ACC]:.3f}"
    )
    gaps = {}
    for objective, runs in arms.items():
        gap = spread([r[m.EVAL_LINEAR_ACC] for r in runs])["mean"] - pixel[m.EVAL_LINEAR_ACC]
        met = "met" if gap >= TARGET_GAP else "missed"
        print(f"GAP {objective}: linear_acc - pixel = {gap:+.3f} (target >= {TARGET_GAP}: {met})")
        gaps[objective] = gap
    return gaps


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    start_load = load_average()
    started = time.perf_counter()
    load_dataset.cache_clear()
    data = load_data(make_config(args, args.objectives[0], args.seeds[0]))
    generation_s = time.perf_counter() - started
    print(f"shapes generated in {generation_s:.2f} s (cached for every run)", flush=True)
    references = references_of(args, data)
    print(f"references: {references}", flush=True)
    arms = {objective: run_arm(args, objective, data) for objective in args.objectives}
    print(table(references, arms))
    gaps = report_gaps(references, arms)
    end_load = load_average()
    print(f"load average {start_load} -> {end_load}; {time.perf_counter() - started:.0f} s in all")
    payload = {
        "args": vars(args),
        "machine": machine_info(torch.device(args.device)),
        "load_average": {"start": start_load, "end": end_load},
        "generation_s": generation_s,
        "references": references,
        "arms": arms,
        "gaps": gaps,
    }
    write_json(args.json_out, payload)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
