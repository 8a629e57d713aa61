"""Smoke tests of the benchmark scripts: each runs end to end with its tiniest settings.

Nothing here checks a timing: the numbers depend on the machine. What is
checked is that each script measures every side, prints its ratio line and
writes its JSON.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import budget_reuse  # noqa: E402
import loss_cost  # noqa: E402
import shapes_gap  # noqa: E402
import step_metrics  # noqa: E402
import sweep_overhead  # noqa: E402
import throughput  # noqa: E402


def test_throughput_measures_every_side_and_prints_ratios(tmp_path, capsys):
    out = tmp_path / "throughput.json"
    argv = ["--configs", "small_cnn-digits-64", "--steps", "2", "--repeats", "2"]
    argv += ["--warmup", "1", "--workers", "0", "--no-memory", "--json-out", str(out)]
    assert throughput.main(argv) == 0
    printed = capsys.readouterr().out
    assert "RATIO small_cnn-digits-64: project/baseline-w0 = " in printed
    sides = json.loads(out.read_text())["results"][0]["sides"]
    assert set(sides) == {"project", "baseline-w0"}
    for side in sides.values():
        assert len(side["seconds"]) == 2
        assert side["images_per_s"]["median"] > 0


def test_throughput_memory_probe_reports_growth():
    argv = ["--configs", "small_cnn-digits-64", "--steps", "1", "--warmup", "0"]
    args = throughput.parse_args([*argv, "--memory-probe", "baseline-w0"])
    report = throughput.probe_memory(args)
    assert report["peak_rss_mb"] >= report["rss_before_mb"] > 0
    assert report["rss_growth_mb"] == pytest.approx(report["peak_rss_mb"] - report["rss_before_mb"])


def test_reference_loss_matches_the_project_loss():
    import torch
    import torch.nn.functional as F
    from _reference_baseline import reference_rkdo_loss

    from rkdo_tune.objectives import rkdo_loss

    generator = torch.Generator().manual_seed(0)
    z1 = F.normalize(torch.randn(16, 8, generator=generator), dim=1)
    z2 = F.normalize(torch.randn(16, 8, generator=generator), dim=1)
    for depth in (1, 3):
        ours = float(rkdo_loss(z1, z2, depth=depth)[0])
        assert float(reference_rkdo_loss(z1, z2, depth=depth)) == pytest.approx(ours, abs=1e-5)


def test_loss_cost_prints_the_depth3_ratio(tmp_path, capsys):
    out = tmp_path / "loss.json"
    argv = ["--batches", "8", "--dim", "4", "--iters", "1", "--rounds", "1"]
    # --no-compile: the compiled losses are checked in tests/objectives/test_compiled.py
    assert loss_cost.main([*argv, "--no-context", "--no-compile", "--json-out", str(out)]) == 0
    assert "RATIO B=8: rkdo-d3/icon = " in capsys.readouterr().out
    variants = json.loads(out.read_text())["results"][0]["variants"]
    assert set(variants) == {"icon", "rkdo-d1", "rkdo-d3", "rkdo-d8", "reference-rkdo-d3"}
    assert variants["icon"]["ratio_vs_icon"] == pytest.approx(1.0)


def _point(trials: int, epochs: int, *, fixed: float, per_trial: float, per_epoch: float):
    total = fixed + trials * (per_trial + per_epoch * epochs)
    seconds = 2 * epochs  # the direct side's training time per trial
    return {"trials": trials, "epochs": epochs, "overhead_s": total, "direct_s_per_trial": seconds}


def test_sweep_overhead_fit_separates_sweep_trial_and_epoch_parts():
    costs = {"fixed": 9.0, "per_trial": 0.5, "per_epoch": 0.1}
    points = [_point(n, e, **costs) for n in (2, 6) for e in (1, 3)]
    fit = sweep_overhead.fit_overhead(points, trial_seconds=60.0)
    assert fit["fixed_per_sweep_s"] == pytest.approx(9.0)
    assert fit["per_trial_s"] == pytest.approx(0.5)
    assert fit["per_epoch_s"] == pytest.approx(0.1)
    assert fit["epochs_in_60s_trial"] == pytest.approx(30.0)  # 2 s per epoch
    assert fit["percent_at_60s"]["3"] == pytest.approx(100 * (0.5 + 3.0 + 9.0 / 3) / 60)
    # one N: the per-sweep part cannot be told apart and is folded into the per-trial one
    single = sweep_overhead.fit_overhead([_point(3, 1, **costs)], trial_seconds=60.0)
    assert single["fixed_per_sweep_s"] is None and single["per_epoch_s"] is None
    assert single["per_trial_s"] == pytest.approx(9.0 / 3 + 0.5 + 0.1)


def test_sweep_overhead_direct_side_trains_each_config(tmp_path):
    from rkdo_tune.config import TrialConfig

    config = TrialConfig(epochs=1, steps_per_epoch=1, device="cpu").to_dict()
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"configs": [config, config], "threads": 1}))
    seconds = sweep_overhead.direct_main(str(spec))["train_s"]
    assert len(seconds) == 2 and all(math.isfinite(s) and s > 0 for s in seconds)


@pytest.mark.slow
@pytest.mark.ray
def test_sweep_overhead_end_to_end(tmp_path, capsys):
    out = tmp_path / "sweep.json"
    argv = ["--trials", "1", "--epochs", "1", "--steps", "1", "--cpus", "1", "--no-asha"]
    argv += ["--keep", str(tmp_path / "work"), "--json-out", str(out)]
    assert sweep_overhead.main(argv) == 0
    assert "RATIO sweep/direct wall, N=1, 1 epoch(s) x 1 steps: " in capsys.readouterr().out
    point = json.loads(out.read_text())["overhead"][0]
    assert point["trial_epochs"] == [1]
    assert len(point["sweep_wall_s"]) == len(point["direct_wall_s"]) == 1


def test_step_metrics_times_both_sides_and_prints_the_ratio(tmp_path, capsys):
    out = tmp_path / "step_metrics.json"
    argv = ["--steps", "30", "--repeats", "2", "--warmup", "0", "--eval-every", "10"]
    assert step_metrics.main([*argv, "--json-out", str(out)]) == 0
    assert "RATIO every-step/strided = " in capsys.readouterr().out
    seconds = json.loads(out.read_text())["seconds"]
    assert set(seconds) == {"every-step", "strided"}
    assert all(len(values) == 2 for values in seconds.values())


@pytest.mark.slow
@pytest.mark.ray
def test_budget_reuse_runs_both_sides_and_finds_the_same_answers(tmp_path, capsys):
    out = tmp_path / "budget_reuse.json"
    shrink = ["budgets.epochs=[1, 2]", "base.steps_per_epoch=2", "base.eval_every_steps=null"]
    argv = ["--repeats", "1", "--seeds", "1", *(f"--set={s}" for s in shrink)]
    assert budget_reuse.main([*argv, "--json-out", str(out)]) == 0
    assert "(training epochs 3 / 2 = 1.50x)" in capsys.readouterr().out
    result = json.loads(out.read_text())
    assert result["largest_difference"] == 0.0
    assert all(len(walls) == 1 for walls in result["walls"].values())


def test_shapes_gap_scores_pixels_and_an_arm(tmp_path, capsys):
    out = tmp_path / "shapes_gap.json"
    argv = ["--steps", "2", "--seeds", "42", "--objectives", "rkdo", "--no-ceiling"]
    argv += ["--samples", "200", "--size", "16", "--classes", "4", "--batch-size", "16"]
    assert shapes_gap.main([*argv, "--json-out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "PIXEL" in printed and "GAP" in printed
    assert out.is_file()
