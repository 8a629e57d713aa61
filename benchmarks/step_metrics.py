"""What a seed run's per-step MLflow rows cost: every step against the default stride.

The part of a long trial's sweep overhead that grows with its steps is the
seed run's per-step metrics (6 keys a step). This drives the real
`SeedRunLogger` through the calls the trainer makes (on_start, on_step for
every step, an evaluation flush every `--eval-every` steps) against a real
SQLite store, with no training in between, once with every step sent
(`step_points=0`, what rkdo-tune did before the stride) and once with the
default bound (`layout.DEFAULT_STEP_POINTS`). The two sides are interleaved,
in flipped order each repeat, and the ratio is the median of the paired ones.

    python benchmarks/step_metrics.py --steps 3000 --repeats 5 --json-out step_metrics.json
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _common import format_table, load_average, machine_info, summarize, write_json

from rkdo_tune import metrics as m
from rkdo_tune.config import TrialConfig
from rkdo_tune.tracking import layout as lay
from rkdo_tune.tracking._client import create_run, open_client
from rkdo_tune.tracking._seed import STEP_METRICS, SeedRunLogger

SIDES = {"every-step": 0, "strided": lay.DEFAULT_STEP_POINTS}


def one_run(client: Any, experiment_id: str, *, steps: int, eval_every: int, points: int) -> float:
    """Wall seconds of one seed run's per-step logging (its run creation excluded)."""
    run_id = create_run(client, experiment_id=experiment_id, run_name="bench", tags={})
    logger = SeedRunLogger(client=client, run_id=run_id, config=TrialConfig(), step_points=points)
    values = {key: 1.0 for key in STEP_METRICS}
    start = time.perf_counter()
    logger.on_start(config=logger.config, total_steps=steps, start_step=0)
    for step in range(1, steps + 1):
        logger.on_step(step=step, metrics={**values, m.TRAIN_LOSS: 1.0 / step})
        if step % eval_every == 0 or step == steps:
            logger.flush()  # what on_eval does after adding the evaluation's metrics
    seconds = time.perf_counter() - start
    client.set_terminated(run_id)
    return seconds


def measure(args: argparse.Namespace, store: Path) -> dict[str, Any]:
    client = open_client(f"sqlite:///{store}")
    experiment_id = client.create_experiment("step-metrics")
    runs: dict[str, list[float]] = {side: [] for side in SIDES}
    order = list(SIDES)
    for _ in range(args.warmup):
        one_run(client, experiment_id, steps=args.steps, eval_every=args.eval_every, points=0)
    for _ in range(args.repeats):
        for side in order:
            runs[side].append(
                one_run(
                    client,
                    experiment_id,
                    steps=args.steps,
                    eval_every=args.eval_every,
                    points=SIDES[side],
                )
            )
        order.reverse()
    paired = np.array(runs["every-step"]) / np.array(runs["strided"])
    saved = np.array(runs["every-step"]) - np.array(runs["strided"])
    return {
        "seconds": runs,
        "summary": {side: summarize(values) for side, values in runs.items()},
        "ratio_median": float(np.median(paired)),
        "saved_per_run_s_median": float(np.median(saved)),
    }


def report(args: argparse.Namespace, result: dict[str, Any]) -> list[str]:
    rows = []
    for side, points in SIDES.items():
        s = result["summary"][side]
        per_step_ms = 1000 * s["median"] / args.steps
        sent = "every step" if points == 0 else f"at most {points} + 2 points"
        rows.append([side, sent, f"{s['median']:.3f}", f"{s['min']:.3f}", f"{per_step_ms:.3f}"])
    headers = ["side", "per-step keys sent", "median s", "min s", "ms per step"]
    return [
        format_table(headers, rows),
        f"RATIO every-step/strided = {result['ratio_median']:.1f}x (paired median); "
        f"the stride saves {result['saved_per_run_s_median']:.2f} s per seed run of "
        f"{args.steps} steps",
    ]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=3000, help="Steps per seed run.")
    parser.add_argument("--eval-every", type=int, default=500, help="Steps between flushes.")
    parser.add_argument("--repeats", type=int, default=5, help="Paired repeats.")
    parser.add_argument("--warmup", type=int, default=1, help="Unmeasured runs first.")
    parser.add_argument("--json-out", help="Write every measurement to this JSON file.")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    print(f"machine: {machine_info(torch.device('cpu'))}")
    start_load = load_average()
    print(f"load average at start: {start_load}")
    with tempfile.TemporaryDirectory(prefix="rkdo-step-metrics-") as folder:
        result = measure(args, Path(folder) / "mlflow.db")
    end_load = load_average()
    print("\n".join(report(args, result)))
    print(f"load average at end: {end_load}")
    write_json(
        args.json_out,
        {"args": vars(args), "load": {"start": start_load, "end": end_load}, **result},
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
