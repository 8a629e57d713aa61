"""The paper protocol, one seed each of RKDO and I-Con: their wall times and step-time ratio.

Step 5 of `gpu_check.sh`. Each objective is one `rkdo-tune train` subprocess
(by default resnet18 on synthetic 32 px images, 10 ten-batch epochs, batch 64,
seed 42, the paper's evaluation after every epoch) that writes its result
with `--output`. The time of each step comes from the run's history: with
`--log-every 1` the trainer reads the loss on the host after every step (as
the reference's `loss.item()` does), and `train/samples_per_s` is the batch
size over that step's seconds. The ratio is RKDO's median step over I-Con's.
The paper counts 9.5537 against 9.5545 GFLOPs per step, so the recursion
should cost next to nothing.

    python benchmarks/paper_protocol_timing.py --workdir out/paper --json-out out/05_paper.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

RKDO_TUNE = str(Path(sys.executable).with_name("rkdo-tune"))
OBJECTIVES = ("rkdo", "icon")
PAPER_GFLOPS = {"rkdo": 9.5537, "icon": 9.5545}  # per training step, as the paper reports
SAMPLES_PER_S = "train/samples_per_s"
LINEAR_ACC = "eval/linear_acc"


def train_command(objective: str, output: Path, args: argparse.Namespace) -> list[str]:
    command = [
        RKDO_TUNE, "train", "--quiet", "--output", str(output), "--objective", objective,
        "--model", args.model, "--dataset", "synthetic", "--synthetic-size", "32",
        "--epochs", str(args.epochs), "--steps-per-epoch", str(args.steps_per_epoch),
        "--batch-size", str(args.batch_size), "--seed", str(args.seed), "--protocol", "paper",
        "--device", args.device, "--precision", args.precision, "--log-every", "1",
    ]  # fmt: skip
    if args.synthetic_samples:
        command += ["--synthetic-samples", str(args.synthetic_samples)]
    return command


def step_seconds(result: dict[str, Any]) -> list[float]:
    """Seconds of every step, from the per-step samples/s of a `--log-every 1` run."""
    batch = int(result["config"]["batch_size"])
    rates = result["history"]["train"].get(SAMPLES_PER_S, [])
    return [batch / rate for rate in rates if rate]


def timing_of(result: dict[str, Any], process_wall_s: float) -> dict[str, Any]:
    steps = step_seconds(result)
    quartiles = statistics.quantiles(steps, n=4) if len(steps) > 1 else [steps[0]] * 3
    training = sum(steps)
    return {
        "status": result["status"],
        "device": result["device"],
        "steps": result["steps"],
        "process_wall_s": process_wall_s,
        "trainer_wall_s": result["wall_seconds"],
        "step_s_median": statistics.median(steps),
        "step_s_q1": quartiles[0],
        "step_s_q3": quartiles[2],
        "steps_total_s": training,
        "outside_steps_s": result["wall_seconds"] - training,  # evaluations, mostly
        LINEAR_ACC: result["metrics"].get(LINEAR_ACC),
    }


def run_objective(objective: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Train one objective in a fresh `rkdo-tune train` process and time it."""
    output = workdir / f"{objective}.json"
    command = train_command(objective, output, args)
    print("$", " ".join(command), flush=True)
    start = time.perf_counter()
    subprocess.run(command, cwd=workdir, check=True)
    wall = time.perf_counter() - start
    return timing_of(json.loads(output.read_text()), wall)


def summary_lines(payload: dict[str, Any]) -> list[str]:
    runs, ratios = payload["runs"], payload["ratios"]
    lines = [
        f"RESULT {name}: {run['status']} on {run['device']}, {run['steps']} steps, median step "
        f"{1000 * run['step_s_median']:.2f} ms (IQR {1000 * run['step_s_q1']:.2f}-"
        f"{1000 * run['step_s_q3']:.2f}), trainer wall {run['trainer_wall_s']:.1f} s "
        f"({run['outside_steps_s']:.1f} s outside steps), process wall "
        f"{run['process_wall_s']:.1f} s, linear acc {run[LINEAR_ACC]}"
        for name, run in runs.items()
    ]
    lines.append(
        f"RATIO rkdo/icon: step time {ratios['step_time']:.4f}x, trainer wall "
        f"{ratios['trainer_wall']:.3f}x; the paper's GFLOPs give {ratios['paper_gflops']:.5f}x"
    )
    return lines


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--workdir", required=True, help="The runs' output JSON goes here.")
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--steps-per-epoch", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--synthetic-samples", type=int, help="Default: the config's.")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    parser.add_argument("--json-out", help="Write both runs' timings and the ratios here.")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = Path(args.workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    runs = {objective: run_objective(objective, args, workdir) for objective in OBJECTIVES}
    payload = {
        "settings": vars(args),
        "order": list(OBJECTIVES),
        "runs": runs,
        "ratios": {
            "step_time": runs["rkdo"]["step_s_median"] / runs["icon"]["step_s_median"],
            "trainer_wall": runs["rkdo"]["trainer_wall_s"] / runs["icon"]["trainer_wall_s"],
            "paper_gflops": PAPER_GFLOPS["rkdo"] / PAPER_GFLOPS["icon"],
        },
    }
    print("\n".join(summary_lines(payload)))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(payload, indent=2) + "\n")
        print(f"wrote {args.json_out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
