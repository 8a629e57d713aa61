"""The parts of `gpu_check.sh` that are easier in Python than in bash.

    gpu_check_summary.py environment --json-out OUT/00_environment.json
    gpu_check_summary.py junit OUT/01_gpu_tests.xml OUT/01_gpu_tests.json
    gpu_check_summary.py results OUT        # the "Against the targets" part of summary.md

`results` reads each step's JSON and prints Markdown lines that set the
measurements beside their targets. A step whose JSON is missing or unreadable
gets a line saying so; the other steps are still reported.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from gpu_sweep_check import summary_lines as sweep_summary_lines
from paper_protocol_timing import summary_lines as paper_summary_lines

RESNET_GPU_TARGET = 5.0  # resnet18 at 32 px on a GPU: project >= 5x the reference-protocol loop
STEP_RATIO_CLOSE = 1.05  # what "costs almost nothing" is read as here, against the paper's 0.9999


def environment() -> dict[str, Any]:
    """torch, CUDA and the GPU as this machine has them (no GPU is fine)."""
    import ray
    import torch

    info: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "ray": ray.__version__,
        "cuda_available": torch.cuda.is_available(),
    }
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(
            gpu=props.name,
            gpu_count=torch.cuda.device_count(),
            gpu_memory_mb=props.total_memory / 2**20,
            capability=f"{props.major}.{props.minor}",
            bf16_supported=torch.cuda.is_bf16_supported(),
        )
    try:
        smi = subprocess.run(["nvidia-smi"], capture_output=True, text=True, timeout=20)
        info["nvidia_smi"] = smi.stdout.splitlines()
    except (OSError, subprocess.TimeoutExpired) as exc:
        info["nvidia_smi"] = f"unavailable: {exc}"
    return info


def junit_to_json(xml_path: Path) -> dict[str, Any]:
    """Every test case of a pytest JUnit XML file with its outcome, and the counts."""
    if not xml_path.is_file():
        return {"error": f"{xml_path.name} is missing: pytest did not finish", "counts": {}}
    tests = []
    for case in ET.parse(xml_path).getroot().iter("testcase"):
        outcome, message = "passed", ""
        for tag in ("failure", "error", "skipped"):
            element = case.find(tag)
            if element is not None:
                outcome = "failed" if tag == "failure" else tag
                text = (element.get("message") or "").strip()
                message = text.splitlines()[0][:300] if text else ""
                break
        tests.append(
            {
                "test": f"{case.get('classname')}::{case.get('name')}",
                "outcome": outcome,
                "seconds": float(case.get("time") or 0.0),
                "message": message,
            }
        )
    counts = {name: sum(t["outcome"] == name for t in tests) for name in
              ("passed", "failed", "error", "skipped")}  # fmt: skip
    return {"counts": counts, "tests": tests}


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def tests_lines(out: Path) -> list[str]:
    report = _load(out / "01_gpu_tests.json")
    if "error" in report:
        return [f"- {report['error']}"]
    counts = ", ".join(f"{n} {name}" for name, n in report["counts"].items())
    lines = [f"- {counts} (of {len(report['tests'])})"]
    lines += [
        f"  - {t['outcome'].upper()} `{t['test']}`: {t['message']}"
        for t in report["tests"]
        if t["outcome"] in ("failed", "error")
    ]
    return lines


def _throughput_line(result: dict[str, Any], label: str, on_cuda: bool) -> str:
    sides = result["sides"]
    parts = [f"project {sides['project']['images_per_s']['median']:.0f} img/s"]
    for side, values in sides.items():
        if side == "project":
            continue
        ratio = values["paired_ratio"]["median"]
        text = f"project/{side} {ratio:.2f}x"
        if on_cuda and result["model"] == "resnet18" and side == "baseline-w0":
            verdict = "met" if ratio >= RESNET_GPU_TARGET else "missed"
            text += f" (target >= {RESNET_GPU_TARGET:g}x: **{verdict}**)"
        parts.append(text)
    memory = sides["project"].get("memory", {})
    if "cuda_peak_mb" in memory:
        parts.append(f"project CUDA peak {memory['cuda_peak_mb']:.0f} MiB")
    return f"- {result['config']} {label}: " + "; ".join(parts)


def throughput_lines(out: Path) -> list[str]:
    lines = []
    for label, name in (("fp32", "02_throughput_fp32.json"),
                        ("bf16+compile", "02_throughput_bf16_compile.json")):  # fmt: skip
        path = out / name
        if not path.is_file():
            lines.append(f"- {label}: no {name}")
            continue
        payload = _load(path)
        on_cuda = payload["machine"]["device"].startswith("cuda")
        lines += [_throughput_line(r, label, on_cuda) for r in payload["results"]]
    return lines


def loss_lines(out: Path) -> list[str]:
    payload = _load(out / "03_loss_cost.json")
    target = payload.get("target_depth3_ratio")
    lines = []
    for result in payload["results"]:
        variants = result["variants"]
        parts = [f"icon {variants['icon']['us_per_call']['median']:.0f} µs/call"]
        for name in ("rkdo-d3", "rkdo-d3-compiled"):
            if name in variants:
                ratio = variants[name]["ratio_vs_icon"]
                verdict = "met" if target is not None and ratio <= target else "missed"
                parts.append(
                    f"{name}/{variants[name]['baseline']} {ratio:.2f}x "
                    f"(target <= {target}x: **{verdict}**)"
                )
        lines.append(
            f"- B={result['batch']} on {payload['machine']['device']}: " + "; ".join(parts)
        )
    return lines


def sweep_lines(out: Path) -> list[str]:
    payload = _load(out / "04_sweep.json")
    return [f"- {line.strip()}" for line in sweep_summary_lines(payload)]


def paper_lines(out: Path) -> list[str]:
    payload = _load(out / "05_paper_protocol.json")
    ratio = payload["ratios"]["step_time"]
    verdict = "agrees" if ratio <= STEP_RATIO_CLOSE else "does not agree"
    lines = [f"- {line.strip()}" for line in paper_summary_lines(payload)]
    lines.append(
        f"- step-time ratio {ratio:.4f} against the paper's {payload['ratios']['paper_gflops']:.5f}"
        f" (read here as agreeing when <= {STEP_RATIO_CLOSE}): **{verdict}**"
    )
    return lines


SECTIONS: tuple[tuple[str, Callable[[Path], list[str]]], ...] = (
    ("1. gpu tests", tests_lines),
    ("2. throughput (resnet18 at 32 px vs the reference loop)", throughput_lines),
    ("3. loss cost (RKDO depth 3 vs I-Con, forward and backward)", loss_lines),
    ("4. fractional-GPU sweep (four trials at once on one GPU)", sweep_lines),
    ("5. paper protocol (one seed each, 10 ten-batch epochs)", paper_lines),
)


def results_markdown(out: Path) -> str:
    lines = ["", "## Against the targets", ""]
    for title, section in SECTIONS:
        lines.append(f"### {title}")
        try:
            lines += section(out)
        except Exception as exc:  # one unreadable result must not hide the others
            lines.append(f"- no result: {type(exc).__name__}: {exc}")
        lines.append("")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("environment").add_argument("--json-out", required=True)
    junit = commands.add_parser("junit")
    junit.add_argument("xml")
    junit.add_argument("json_out")
    commands.add_parser("results").add_argument("out")
    args = parser.parse_args(argv)
    if args.command == "environment":
        payload = environment()
        Path(args.json_out).write_text(json.dumps(payload, indent=2) + "\n")
        print(json.dumps({k: v for k, v in payload.items() if k != "nvidia_smi"}))
    elif args.command == "junit":
        payload = junit_to_json(Path(args.xml))
        Path(args.json_out).write_text(json.dumps(payload, indent=2) + "\n")
        print(json.dumps(payload["counts"]))
    else:
        sys.stdout.write(results_markdown(Path(args.out)) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
