"""What budget points inside one run save: `paper_protocol` as shipped against the same grid
run as separate trials, side by side through the real CLI (issue 13 §3).

    A (budget points): 2 trials (rkdo, icon), each seed trained once to 10 epochs and scored
                       at 1, 2, 5 and 10;
    B (separate):      8 trials (objective x epochs in {1, 2, 5, 10}), the grid the space
                       ran before: `--set budgets=null` plus `epochs` as a grid parameter.

Both sweeps run one after the other in fresh processes (Ray + Optuna + MLflow into a
temporary sqlite store), in the order A B B A ... over `--repeats`, and the script prints
the wall-time ratio B / A. It also checks that both give the same answers: every per-seed
final score of each budget point in A against the matching separate trial in B.

    python benchmarks/budget_reuse.py --help
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from _common import format_table, load_average, machine_info, summarize, write_json

from rkdo_tune.sweep.space import load_space

RKDO_TUNE = str(Path(sys.executable).with_name("rkdo-tune"))
SPACE = "paper_protocol"
COMPARED = ("eval/linear_acc", "eval/knn_acc", "eval/nmi", "train/epoch_loss")


def separate_grid(points: Sequence[int]) -> list[str]:
    """The overrides that run the space's budget points as a grid of separate trials."""
    return [
        "budgets=null",
        f"parameters.epochs={{type: categorical, choices: {list(points)}}}",
        f"search.num_samples={2 * len(points)}",  # both objectives at each budget
    ]


def run_sweep(workdir: Path, *, name: str, overrides: list[str], seeds: int) -> float:
    """Wall seconds of one `rkdo-tune sweep` of the space with `overrides` (in a fresh dir)."""
    folder = workdir / name
    folder.mkdir()
    sets = [f"--set={o}" for o in [*overrides, f"repeats={seeds}"]]
    command = [RKDO_TUNE, "sweep", "--space", SPACE, "--name", name, "--no-baseline", *sets]
    command += ["--storage", str(folder / "results")]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=folder, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"sweep {name} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return wall


def final_reports(folder: Path) -> list[dict[str, Any]]:
    """The last Tune report of every trial of the sweep in `folder`, with its params."""
    reports = []
    for result in sorted((folder / "results").glob("*/*/result.json")):
        lines = result.read_text().splitlines()
        last = json.loads(lines[-1]) if lines else {}
        last["params"] = json.loads((result.parent / "params.json").read_text())
        reports.append(last)
    return reports


def largest_difference(budgeted: Path, separate: Path, seeds: list[int]) -> float:
    """Max |A - B| over budget points, seeds and COMPARED scores (0: the same answers)."""
    by_cell = {
        (r["params"]["objective"], int(r["params"]["epochs"])): r for r in final_reports(separate)
    }
    worst = 0.0
    for report in final_reports(budgeted):
        objective = report["params"]["objective"]
        for (cell_objective, epochs), other in by_cell.items():
            if cell_objective != objective:
                continue
            prefix = "" if epochs == int(report["epoch"]) else f"budget/e{epochs}/"
            for seed in seeds:
                for key in COMPARED:
                    a = report[f"seed_{seed}/{prefix}{key}"]
                    worst = max(worst, abs(a - other[f"seed_{seed}/{key}"]))
    return worst


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=2, help="A/B pairs (order A B B A ...)")
    parser.add_argument("--seeds", type=int, default=5, help="paper seeds per configuration")
    parser.add_argument(
        "--set", dest="sets", action="append", default=[], help="space override, both sides"
    )
    parser.add_argument("--json-out", default=None)
    args = parser.parse_args(argv)
    points = load_space(SPACE, overrides=args.sets).budget_epochs
    sides = {"A": list(args.sets), "B": [*args.sets, *separate_grid(points)]}
    seeds = [42, 123, 456, 789, 101][: args.seeds]
    load_start = load_average()
    walls: dict[str, list[float]] = {"budget points": [], "separate trials": []}
    differences = []
    with tempfile.TemporaryDirectory(prefix="rkdo-budget-reuse-") as tmp:
        for repeat in range(args.repeats):
            order = ["A", "B"] if repeat % 2 == 0 else ["B", "A"]
            names = {}
            for side in order:
                name = f"{side.lower()}{repeat}"
                wall = run_sweep(Path(tmp), name=name, overrides=sides[side], seeds=args.seeds)
                walls["budget points" if side == "A" else "separate trials"].append(wall)
                names[side] = Path(tmp) / name
            differences.append(largest_difference(names["A"], names["B"], seeds))
    a, b = summarize(walls["budget points"]), summarize(walls["separate trials"])
    rows = [
        [label, f"{s['median']:.1f}", f"{s['min']:.1f}", f"{s['max']:.1f}"]
        for label, s in (("budget points (A)", a), ("separate trials (B)", b))
    ]
    print(format_table(["paper_protocol, wall s", "median", "min", "max"], rows))
    ratio = b["median"] / a["median"]
    work = f"{sum(points)} / {points[-1]} = {sum(points) / points[-1]:.2f}x"
    print(f"RATIO separate/budget_points wall: {ratio:.2f}x (training epochs {work})")
    print(f"largest |A - B| of any per-seed final score: {max(differences):.3g}")
    print(f"load average at start {load_start}, at end {load_average()}")
    write_json(
        args.json_out,
        {
            "machine": machine_info(torch.device("cpu")),
            "walls": walls,
            "ratio": ratio,
            "largest_difference": max(differences),
            "load_start": load_start,
            "load_end": load_average(),
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
