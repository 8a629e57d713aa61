"""Fractional GPUs: do four trials run at once on one GPU, and how much memory does each take?

Step 4 of `gpu_check.sh`. Runs `rkdo-tune sweep` on `spaces/gpu_fractional.yaml`
(a subprocess whose output passes through) with `--gpus-per-trial`,
`--max-concurrent` and `--cpus-per-trial` as given, while `nvidia-smi`, when
present, samples the device's used memory every 0.5 s. Then it reads every
trial's `result.json` under the sweep's `--storage` directory:

- a trial ends at its last report's `timestamp` and started `time_total_s`
  before that (the time since the trial function began: data, model, CUDA
  start-up and every epoch). Ray's timestamps are whole seconds, so each
  interval is good to about 1 s;
- concurrency is the largest number of trials running at one moment; "all
  at once" means the last trial started before the first one ended;
- peak memory is the trial's largest `cuda_peak_allocated_mb` /
  `cuda_peak_reserved_mb` report (what `sweep_trial` adds on CUDA).

    python benchmarks/gpu_sweep_check.py --workdir out/sweep --json-out out/04_sweep.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rkdo_tune.sweep.trial import CUDA_PEAK_ALLOCATED_KEY as PEAK_ALLOCATED
from rkdo_tune.sweep.trial import CUDA_PEAK_RESERVED_KEY as PEAK_RESERVED

SPACE = Path(__file__).resolve().parent / "spaces" / "gpu_fractional.yaml"
RKDO_TUNE = str(Path(sys.executable).with_name("rkdo-tune"))
NAME = "gpu-fractional"


class GpuMemorySampler:
    """`nvidia-smi` writing the used memory of every GPU to a CSV every 0.5 s, while active."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.process: subprocess.Popen | None = None
        self.file: Any = None

    def __enter__(self) -> GpuMemorySampler:
        if shutil.which("nvidia-smi") is not None:
            self.file = self.path.open("w")
            self.process = subprocess.Popen(
                ["nvidia-smi", "--query-gpu=index,memory.used,memory.total",
                 "--format=csv,noheader,nounits", "-lms", "500"],
                stdout=self.file, stderr=subprocess.DEVNULL,
            )  # fmt: skip
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.file.close()

    def peaks_mb(self) -> dict[str, dict[str, float]] | None:
        """Per GPU index: the largest used memory seen, and the total (MiB); None without it."""
        if self.process is None:
            return None
        peaks: dict[str, dict[str, float]] = {}
        for line in self.path.read_text().splitlines():
            parts = [part.strip() for part in line.split(",")]
            if len(parts) != 3 or not parts[1].isdigit():
                continue
            index, used, total = parts[0], float(parts[1]), float(parts[2])
            entry = peaks.setdefault(index, {"peak_used_mb": 0.0, "total_mb": total})
            entry["peak_used_mb"] = max(entry["peak_used_mb"], used)
        return peaks


def read_trials(experiment: Path) -> list[dict[str, Any]]:
    """Each trial's params, interval (unix seconds), reports and peak CUDA memory, by start."""
    trials = []
    for directory in sorted(p for p in experiment.iterdir() if (p / "result.json").is_file()):
        lines = (directory / "result.json").read_text().splitlines()
        reports = [json.loads(line) for line in lines if line.strip()]
        if not reports:
            continue
        last = reports[-1]
        end = float(last["timestamp"])
        peaks = {
            key: max((r[key] for r in reports if r.get(key) is not None), default=None)
            for key in (PEAK_ALLOCATED, PEAK_RESERVED)
        }
        trials.append(
            {
                "trial_id": last.get("trial_id", directory.name),
                "params": json.loads((directory / "params.json").read_text()),
                "pid": last.get("pid"),
                "start": end - float(last["time_total_s"]),
                "end": end,
                "seconds": float(last["time_total_s"]),
                "reports": len(reports),
                "trial_status": last.get("trial_status"),
                **peaks,
            }
        )
    return sorted(trials, key=lambda trial: trial["start"])


def max_concurrency(intervals: Sequence[tuple[float, float]]) -> int:
    """The most intervals open at one moment; one that ends as another starts does not overlap."""
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    running = most = 0
    for _, change in events:  # at equal times the end (-1) sorts first
        running += change
        most = max(most, running)
    return most


def concurrency_report(trials: Sequence[dict[str, Any]], expected: int) -> dict[str, Any]:
    """How far the trials overlapped, against `expected` all at once."""
    intervals = [(t["start"], t["end"]) for t in trials]
    if not intervals:
        return {"trials": 0, "max_concurrent": 0, "all_at_once": False}
    last_start, first_end = max(s for s, _ in intervals), min(e for _, e in intervals)
    return {
        "trials": len(intervals),
        "max_concurrent": max_concurrency(intervals),
        "all_at_once": len(intervals) == expected and last_start < first_end,
        "start_spread_s": last_start - min(s for s, _ in intervals),
        "overlap_all_s": max(0.0, first_end - last_start),
        "span_s": max(e for _, e in intervals) - min(s for s, _ in intervals),
    }


class Interrupted(Exception):
    """SIGTERM (from `timeout`): stop waiting, but still read and write what the trials left."""


def _interrupt(signum: int, frame: object) -> None:
    raise Interrupted


def run_sweep(args: argparse.Namespace, workdir: Path) -> tuple[int, float]:
    """The real CLI sweep; its exit code (None if cut off) and wall seconds."""
    command = [
        RKDO_TUNE, "sweep", "--space", str(SPACE), "--name", NAME,
        "--storage", str(workdir / "ray"),
        "--tracking-uri", f"sqlite:///{workdir / 'mlflow.db'}",
        "--num-samples", str(args.trials), "--max-concurrent", str(args.max_concurrent),
        "--gpus-per-trial", str(args.gpus_per_trial), "--cpus-per-trial", str(args.cpus_per_trial),
        *[part for item in args.set for part in ("--set", item)],
    ]  # fmt: skip
    print("$", " ".join(command), flush=True)
    start = time.perf_counter()
    sweep = subprocess.Popen(command, cwd=workdir)
    try:
        returncode: int | None = sweep.wait()
    except Interrupted:  # the sweep got the same signal: Tune saves its state and stops
        returncode = None
        try:
            sweep.wait(timeout=15)
        except subprocess.TimeoutExpired:
            sweep.kill()
    return returncode, time.perf_counter() - start


def summary_lines(payload: dict[str, Any]) -> list[str]:
    c = payload["concurrency"]
    verdict = "met" if c["all_at_once"] else "missed"
    lines = [
        f"RESULT {c['trials']} trials, at most {c['max_concurrent']} at once "
        f"(all {payload['expected_trials']} at once: {verdict})"
    ]
    if c["trials"]:
        lines.append(
            f"  starts spread over {c['start_spread_s']:.1f} s, all overlapped for "
            f"{c['overlap_all_s']:.1f} s, sweep span {c['span_s']:.1f} s"
        )
    for trial in payload["trials"]:
        memory = "no CUDA memory reported"
        if trial[PEAK_ALLOCATED] is not None:
            memory = f"peak CUDA {trial[PEAK_ALLOCATED]:.0f} MiB allocated, "
            memory += f"{trial[PEAK_RESERVED]:.0f} MiB reserved"
        lines.append(
            f"  {trial['trial_id']} {trial['params']}: {trial['seconds']:.1f} s from "
            f"+{trial['start'] - payload['trials'][0]['start']:.1f} s, {memory}"
        )
    if payload["device_memory"]:
        for index, entry in payload["device_memory"].items():
            lines.append(
                f"  GPU {index}: peak used {entry['peak_used_mb']:.0f} of {entry['total_mb']:.0f}"
                " MiB (nvidia-smi, every process)"
            )
    return lines


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--workdir", required=True, help="Ray storage and MLflow store go here.")
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--max-concurrent", type=int, default=4)
    parser.add_argument("--gpus-per-trial", type=float, default=0.25)
    parser.add_argument("--cpus-per-trial", type=float, default=2)
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY.PATH=VALUE", help="Space override."
    )
    parser.add_argument("--json-out", help="Write the trials and the verdict to this JSON file.")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = Path(args.workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, _interrupt)
    with GpuMemorySampler(workdir / "nvidia_smi_memory.csv") as sampler:
        returncode, wall = run_sweep(args, workdir)
    experiment = workdir / "ray" / NAME
    trials = read_trials(experiment) if experiment.is_dir() else []
    payload = {
        "settings": vars(args),
        "sweep_returncode": returncode,  # None: cut off by SIGTERM
        "sweep_wall_s": wall,
        "expected_trials": args.trials,
        "trials": trials,
        "concurrency": concurrency_report(trials, args.trials),
        "device_memory": sampler.peaks_mb(),
    }
    print("\n".join(summary_lines(payload)))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(payload, indent=2) + "\n")
        print(f"wrote {args.json_out}")
    if returncode is None:
        return 124  # cut off by `timeout`, as timeout itself would report
    return returncode or int(len(trials) < args.trials)


if __name__ == "__main__":
    raise SystemExit(main())
