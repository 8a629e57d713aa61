"""Training throughput: the project's trainer against the literal reference-protocol baseline.

Images per second, counting each image once although it is augmented into
two views. Both sides train the same model with the same Adam settings and
the same RKDO loss settings (depth 3, alpha 0.5, tau 0.5) on the same device,
in the same process; repeats are interleaved (A B C, C B A, ...) so drift in
machine load hits every side alike.

- project: `Trainer.run_epoch()` with evaluation switched off (eval_every
  beyond the run), so a timed block is the real hot loop: on-device uint8
  batches, batched two-view augmentation, the shared-similarity RKDO loss and
  the trainer's per-step bookkeeping. Warm-up goes through the private
  `Trainer._epoch_batches()` / `Trainer._train_step()` (fine in a benchmark).
- baseline-wN: `_reference_baseline` (PIL + torchvision per-sample transforms
  in a Dataset, a DataLoader with N workers, per-level similarity recompute).

Peak memory comes from a fresh subprocess per side (peak RSS on CPU, plus
torch.cuda.max_memory_allocated on CUDA), so one side's allocations cannot
hide the other's.

    python benchmarks/throughput.py --help
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from _common import (
    RssSampler,
    format_table,
    load_average,
    machine_info,
    summarize,
    timed,
    write_json,
)
from _reference_baseline import ReferenceLearner, endless, make_loader, uint8_views_match

from rkdo_tune.config import TrialConfig
from rkdo_tune.data import ImageData, load_dataset
from rkdo_tune.training.callbacks import STATUS_COMPLETED
from rkdo_tune.training.trainer import Trainer, resolve_device, seed_everything

SEED = 42
NO_EVAL = 10**9  # eval_every and epochs beyond any run: evaluation never falls due


@dataclass(frozen=True)
class BenchConfig:
    """One measured setting; `steps` is the default number of steps per timed block."""

    model: str
    dataset: str
    batch_size: int
    steps: int


CONFIGS = {
    "small_cnn-digits-64": BenchConfig("small_cnn", "digits", 64, 20),
    "small_cnn-digits-512": BenchConfig("small_cnn", "digits", 512, 4),
    "resnet18-synthetic32-64": BenchConfig("resnet18", "synthetic", 64, 6),
    "resnet18-synthetic32-512": BenchConfig("resnet18", "synthetic", 512, 2),
}


CPU_SKIPPED = "resnet18-synthetic32-512"


def load_bench_data(config: BenchConfig) -> ImageData:
    return load_dataset(config.dataset, synthetic_size=32)


class ProjectSide:
    """The project's Trainer, timed one `run_epoch()` (= `steps` steps) at a time."""

    def __init__(
        self, config: BenchConfig, data: ImageData, *, steps: int, args: argparse.Namespace
    ) -> None:
        trial = TrialConfig(
            model=config.model,
            dataset=config.dataset,
            synthetic_size=32,
            batch_size=config.batch_size,
            steps_per_epoch=steps,
            epochs=NO_EVAL,
            eval_every=NO_EVAL,
            device=args.device,
            precision=args.precision,
            compile=args.compile,
            log_every=args.log_every,
            seed=SEED,
        )
        self.trainer = Trainer(trial, data=data)
        self.trainer.start()

    def warm_up(self, steps: int) -> None:
        for indices in self.trainer._epoch_batches()[:steps]:
            self.trainer._train_step(indices)

    def run(self) -> None:
        self.trainer.run_epoch()
        if self.trainer.status != STATUS_COMPLETED:
            raise RuntimeError(f"project trainer stopped: {self.trainer.reason}")


class BaselineSide:
    """The reference loop. Each timed block starts a new pass over the DataLoader.

    That is what the reference does every (10-batch) epoch, worker start-up
    included; `settle()` ends the pass after the timer stops, so workers never
    prefetch while another side is timed.
    """

    def __init__(
        self, config: BenchConfig, data: ImageData, *, steps: int, workers: int, device: Any
    ) -> None:
        seed_everything(SEED)
        self.learner = ReferenceLearner(data, model_name=config.model, device=device)
        self.loader = make_loader(
            data, batch_size=config.batch_size, num_workers=workers, seed=SEED
        )
        self.steps = steps
        self.batches: Generator | None = None

    def warm_up(self, steps: int) -> None:
        self.batches = endless(self.loader)
        self.learner.train_steps(self.batches, steps)
        self.settle()

    def run(self) -> None:
        self.batches = endless(self.loader)
        self.learner.train_steps(self.batches, self.steps)

    def settle(self) -> None:
        """End the current pass (its workers exit); untimed."""
        if self.batches is not None:
            self.batches.close()
            self.batches = None


def side_names(workers: Sequence[int]) -> list[str]:
    return ["project", *[f"baseline-w{w}" for w in workers]]


def build_side(
    name: str, config: BenchConfig, data: ImageData, *, steps: int, args: argparse.Namespace
) -> Any:
    if name == "project":
        return ProjectSide(config, data, steps=steps, args=args)
    workers = int(name.removeprefix("baseline-w"))
    return BaselineSide(
        config, data, steps=steps, workers=workers, device=resolve_device(args.device)
    )


def interleaved_times(
    sides: dict[str, Any], *, repeats: int, device: torch.device
) -> dict[str, list[float]]:
    """Seconds per timed block for each side; the order flips every repeat (ABC, CBA, ...)."""
    times: dict[str, list[float]] = {name: [] for name in sides}
    order = list(sides)
    for repeat in range(repeats):
        for name in order if repeat % 2 == 0 else order[::-1]:
            times[name].append(timed(sides[name].run, device))
            if isinstance(sides[name], BaselineSide):
                sides[name].settle()
    return times


def measure_config(name: str, config: BenchConfig, args: argparse.Namespace) -> dict[str, Any]:
    """Throughput of every side on one setting."""
    device = resolve_device(args.device)
    steps = args.steps or config.steps
    data = load_bench_data(config)
    if not uint8_views_match(data):
        raise RuntimeError("the baseline dataset does not round-trip the stored pixels")
    sides = {
        side: build_side(side, config, data, steps=steps, args=args)
        for side in side_names(args.workers)
    }
    for side in sides.values():
        side.warm_up(args.warmup)
    times = interleaved_times(sides, repeats=args.repeats, device=device)
    images = steps * config.batch_size
    result: dict[str, Any] = {"config": name, **dataclasses.asdict(config), "steps": steps}
    result["sides"] = {
        side: {
            "seconds": values,
            "images_per_s": summarize([images / s for s in values]),
            "ms_per_step": summarize([1000 * s / steps for s in values]),
        }
        for side, values in times.items()
    }
    for side, values in times.items():
        # Blocks of one repeat run next to each other, so their ratio cancels slow drift.
        paired = [other / project for project, other in zip(times["project"], values, strict=True)]
        result["sides"][side]["paired_ratio"] = summarize(paired)
    return result


def probe_memory(args: argparse.Namespace) -> dict[str, float]:
    """In a fresh process: build one side, warm up, run one timed block; report peaks.

    The baseline for the RSS growth is taken after imports and data loading,
    so the growth is the side's own working set (model, optimiser state,
    activations, loader buffers).
    """
    name, side_name = args.configs[0], args.memory_probe
    config = CONFIGS[name]
    device = resolve_device(args.device)
    data = load_bench_data(config)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    with RssSampler() as sampler:
        side = build_side(side_name, config, data, steps=args.steps or config.steps, args=args)
        side.warm_up(args.warmup)
        side.run()
    report = {
        "rss_before_mb": sampler.start_mb,
        "peak_rss_mb": sampler.peak_mb,
        "rss_growth_mb": sampler.peak_mb - sampler.start_mb,
        "workers_peak_rss_mb": sampler.children_peak_mb,
    }
    if device.type == "cuda":
        report["cuda_peak_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    if isinstance(side, BaselineSide):
        side.settle()
    return report


def memory_of(name: str, side: str, args: argparse.Namespace) -> dict[str, float]:
    """Run `probe_memory` in a subprocess and read its JSON line."""
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--memory-probe",
        side,
        "--configs",
        name,
        "--warmup",
        "1",  # peak memory per step does not grow with the step count: one of each will do
        "--steps",
        "1",
        "--device",
        args.device,
        "--precision",
        args.precision,
        "--log-every",
        str(args.log_every),
        *(["--threads", str(args.threads)] if args.threads else []),
        *(["--compile"] if args.compile else []),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"memory probe {name}/{side} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _memory_cells(memory: dict[str, float]) -> list[str]:
    if not memory:
        return ["-", "-", "-"]
    workers = memory["workers_peak_rss_mb"]
    cuda = f"{memory['cuda_peak_mb']:.0f}" if "cuda_peak_mb" in memory else "-"
    return [f"{memory['rss_growth_mb']:.0f}", f"{workers:.0f}" if workers else "-", cuda]


def report_rows(result: dict[str, Any]) -> list[list[str]]:
    rows = []
    for side, values in result["sides"].items():
        ips, ms, ratio = values["images_per_s"], values["ms_per_step"], values["paired_ratio"]
        rows.append(
            [
                result["config"],
                side,
                f"{ips['median']:.0f}",
                f"{ips['max']:.0f}",
                f"{ips['min']:.0f}-{ips['max']:.0f}",
                f"{ips['iqr']:.0f}",
                f"{ms['median']:.1f}",
                *_memory_cells(values.get("memory", {})),
                f"{ratio['median']:.2f}x",
            ]
        )
    return rows


def ratio_lines(result: dict[str, Any]) -> list[str]:
    sides = result["sides"]
    project = sides["project"]["images_per_s"]
    lines = []
    for side, values in sides.items():
        if side == "project":
            continue
        paired, other = values["paired_ratio"], values["images_per_s"]
        lines.append(
            f"RATIO {result['config']}: project/{side} = {paired['median']:.2f}x "
            f"(median of {paired['n']} paired repeats, IQR {paired['q1']:.2f}-{paired['q3']:.2f}; "
            f"ratio of medians {project['median'] / other['median']:.2f}x, "
            f"of bests {project['max'] / other['max']:.2f}x)"
        )
    return lines


HEADERS = (
    "config", "side", "img/s med", "best", "min-max", "IQR", "ms/step",
    "RSS+ MiB", "workers MiB", "CUDA peak MiB", "project/side (paired)",
)  # fmt: skip


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--configs",
        nargs="+",
        choices=list(CONFIGS),
        help=f"Settings to measure (default: all on CUDA; on CPU all but {CPU_SKIPPED}, "
        "which takes several seconds per step on a small CPU).",
    )
    parser.add_argument("--steps", type=int, help="Steps per timed block (default: per config).")
    parser.add_argument("--warmup", type=int, default=2, help="Untimed steps per side first.")
    parser.add_argument("--repeats", type=int, default=5, help="Timed blocks per side.")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2], help="Baseline workers.")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument(
        "--threads",
        type=int,
        help="torch intra-op threads (default: torch's own). 1 is what a sweep trial with "
        "resources.cpus 1 uses, and is far less disturbed by other jobs on a busy machine.",
    )
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    parser.add_argument("--compile", action="store_true", help="torch.compile the project model.")
    parser.add_argument("--log-every", type=int, default=1, help="Project's host-read interval.")
    parser.add_argument("--no-memory", action="store_true", help="Skip the memory subprocesses.")
    parser.add_argument("--json-out", help="Write every measurement to this JSON file.")
    parser.add_argument("--memory-probe", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.configs is None:
        on_cuda = resolve_device(args.device).type == "cuda"
        args.configs = [name for name in CONFIGS if on_cuda or name != CPU_SKIPPED]
    if min(args.repeats, args.warmup + 1, args.log_every, args.steps or 1, args.threads or 1) < 1:
        parser.error("--repeats, --steps, --threads, --log-every must be >= 1, --warmup >= 0")
    return args


def run(args: argparse.Namespace, *, echo: Callable[[str], None] = print) -> dict[str, Any]:
    device = resolve_device(args.device)
    payload: dict[str, Any] = {"machine": machine_info(device), "load_start": load_average()}
    payload["settings"] = {k: v for k, v in vars(args).items() if k != "memory_probe"}
    echo(f"machine: {payload['machine']}")
    echo(f"load average at start: {payload['load_start']}")
    results = []
    for name in args.configs:
        result = measure_config(name, CONFIGS[name], args)
        if not args.no_memory:
            for side in result["sides"]:
                result["sides"][side]["memory"] = memory_of(name, side, args)
        results.append(result)
        echo(format_table(HEADERS, report_rows(result)))
        for line in ratio_lines(result):
            echo(line)
    payload["results"] = results
    payload["load_end"] = load_average()
    echo(f"load average at end: {payload['load_end']}")
    write_json(args.json_out, payload)
    return payload


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_probe:
        print(json.dumps(probe_memory(args)))
        return 0
    run(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
