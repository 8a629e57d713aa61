"""The prepared GPU check: its CPU smoke path runs every step, and its readers are right.

`gpu_check.sh --cpu-smoke` runs in the suite so that the script cannot rot
before a GPU is lent; nothing here checks a timing.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import gpu_check_summary  # noqa: E402
import gpu_sweep_check  # noqa: E402

STEPS = {
    "01_gpu_tests": "01_gpu_tests.json",
    "02_throughput_fp32": "02_throughput_fp32.json",
    "02_throughput_bf16_compile": "02_throughput_bf16_compile.json",
    "03_loss_cost": "03_loss_cost.json",
    "04_sweep": "04_sweep.json",
    "05_paper_protocol": "05_paper_protocol.json",
}

GPU_TEST_MODULES = (
    "tests.training.test_cuda",
    "tests.objectives.test_cuda_loss",
    "tests.sweep.test_cuda_memory",
)


def test_max_concurrency_counts_trials_running_together():
    assert gpu_sweep_check.max_concurrency([(0, 10), (1, 9), (2, 8), (3, 7)]) == 4
    assert gpu_sweep_check.max_concurrency([(0, 5), (5, 10), (10, 15)]) == 1  # touching ends
    assert gpu_sweep_check.max_concurrency([(0, 4), (1, 6), (5, 9), (8, 12)]) == 2


def test_concurrency_report_wants_every_trial_inside_one_window():
    together = [{"start": s, "end": e} for s, e in [(0, 10), (1, 11), (2, 12), (3, 13)]]
    report = gpu_sweep_check.concurrency_report(together, expected=4)
    assert report["all_at_once"] and report["max_concurrent"] == 4
    assert report["start_spread_s"] == 3 and report["overlap_all_s"] == 7
    staggered = [{"start": s, "end": e} for s, e in [(0, 4), (1, 5), (2, 6), (4, 8)]]
    report = gpu_sweep_check.concurrency_report(staggered, expected=4)
    assert not report["all_at_once"] and report["max_concurrent"] == 3
    assert not gpu_sweep_check.concurrency_report(together[:3], expected=4)["all_at_once"]


def test_junit_outcomes_are_read_per_test(tmp_path):
    xml = tmp_path / "junit.xml"
    xml.write_text(
        '<testsuites><testsuite name="pytest">'
        '<testcase classname="a" name="ok" time="0.5"/>'
        '<testcase classname="a" name="bad" time="1"><failure message="assert 1 == 2&#10;more"/>'
        "</testcase>"
        '<testcase classname="b" name="gone" time="0"><skipped message="needs CUDA"/></testcase>'
        "</testsuite></testsuites>"
    )
    report = gpu_check_summary.junit_to_json(xml)
    assert report["counts"] == {"passed": 1, "failed": 1, "error": 0, "skipped": 1}
    assert report["tests"][1] == {
        "test": "a::bad",
        "outcome": "failed",
        "seconds": 1.0,
        "message": "assert 1 == 2",
    }
    assert "error" in gpu_check_summary.junit_to_json(tmp_path / "missing.xml")


@pytest.mark.slow
@pytest.mark.ray
def test_cpu_smoke_runs_every_step_and_writes_every_result(tmp_path):
    out = tmp_path / "out"
    done = subprocess.run(
        ["bash", str(BENCHMARKS / "gpu_check.sh"), str(out), "--cpu-smoke"],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    summary = (out / "summary.md").read_text()
    for step, json_name in STEPS.items():
        assert (out / json_name).is_file(), step
        assert (out / "logs" / f"{step}.log").is_file(), step
        assert f"| {step} | " in summary and f"| {json_name} |" in summary, step
    assert "## Against the targets" in summary and "no result" not in summary

    tests = json.loads((out / "01_gpu_tests.json").read_text())
    assert tests["counts"]["skipped"] == len(tests["tests"])  # collected, all skipped here
    modules = {t["test"].split("::")[0] for t in tests["tests"]}
    assert modules == set(GPU_TEST_MODULES)
    sweep = json.loads((out / "04_sweep.json").read_text())
    assert sweep["sweep_returncode"] == 0 and len(sweep["trials"]) == 4
    assert all(t["start"] < t["end"] for t in sweep["trials"])
    assert 1 <= sweep["concurrency"]["max_concurrent"] <= 4
    paper = json.loads((out / "05_paper_protocol.json").read_text())
    assert set(paper["runs"]) == {"rkdo", "icon"}
    assert math.isfinite(paper["ratios"]["step_time"]) and paper["ratios"]["step_time"] > 0
