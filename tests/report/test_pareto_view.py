"""The report's Pareto section on a hand-built sweep: which configurations are on the front,
with the leaderboard's seed means and CIs, the control marked, and the figure written."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rkdo_tune import metrics as m
from rkdo_tune.report import _stats
from rkdo_tune.report._pareto import pareto_frame, pareto_view
from rkdo_tune.tracking.reading import _objectives

ACC, AUC = m.EVAL_LINEAR_ACC, m.EVAL_LINEAR_ACC_AUC
OBJECTIVES = ((ACC, "max"), (AUC, "max"))
# trial: (objective, alpha, per-seed (acc, auc)). Seed means, worked by hand:
#   a (0.90, 0.70)  on the front: the most accurate
#   b (0.85, 0.80)  on the front: the largest AUC
#   c (0.80, 0.75)  dominated by b (less accurate, smaller AUC)
#   d (0.85, 0.80)  ties b: both stay on the front
#   base (0.88, 0.60) the I-Con control: dominated by a (0.90 > 0.88, 0.70 > 0.60)
#   nan: a diverged seed in both: left out
TRIALS = {
    "a": ("rkdo", 0.1, [(0.89, 0.69), (0.91, 0.71)]),
    "b": ("rkdo", 0.5, [(0.84, 0.81), (0.86, 0.79)]),
    "c": ("rkdo", 0.9, [(0.80, 0.74), (0.80, 0.76)]),
    "d": ("rkdo", 0.3, [(0.86, 0.80), (0.84, 0.80)]),
    "base": ("icon", None, [(0.87, 0.61), (0.89, 0.59)]),
    "nan": ("rkdo", 1.0, [(np.nan, np.nan), (np.nan, np.nan)]),
}


def _board() -> pd.DataFrame:
    rows = [
        {
            "trial_id": t,
            "seed": s,
            "objective": o,
            "alpha": a,
            "status": "completed",
            ACC: v,
            AUC: u,
        }
        for t, (o, a, values) in TRIALS.items()
        for s, (v, u) in zip((42, 123), values, strict=True)
    ]
    seeds = pd.DataFrame(rows)
    return _stats.leaderboard_frame(
        seeds, metric=ACC, mode="max", params=["alpha"], metrics=[ACC, AUC]
    )


def test_the_front_and_who_dominates_whom():
    frame = pareto_frame(_board(), OBJECTIVES, control="base").set_index("trial_id")
    assert sorted(frame.index) == ["a", "b", "base", "c", "d"]  # "nan" is left out
    assert sorted(frame.index[frame["on_front"]]) == ["a", "b", "d"]
    assert frame.loc["c", "dominated_by"] in ("b, d", "d, b")
    assert frame.loc["base", "dominated_by"] == "a"
    assert frame["control"].tolist().count(True) == 1 and frame.loc["base", "control"]
    assert frame.loc["a", f"{ACC} mean"] == pytest.approx(0.90)


def test_mixed_modes_turn_the_front():
    minimise_auc = ((ACC, "max"), (AUC, "min"))
    frame = pareto_frame(_board(), minimise_auc, control="base").set_index("trial_id")
    # Now a small AUC is good: base (0.88, 0.60) and a (0.90, 0.70) trade off; c (0.80,
    # 0.75) is beaten by a on both, and b, d by a too.
    assert sorted(frame.index[frame["on_front"]]) == ["a", "base"]


def test_the_section_lists_the_front_with_cis_and_writes_its_files(tmp_path):
    view = pareto_view(_board(), OBJECTIVES, control="base", params=["alpha"], out_dir=tmp_path)
    text = "\n".join(view.lines)
    assert text.startswith("## Accuracy against compute: the Pareto front")
    assert f"{AUC} is the area under the {ACC} curve" in text  # the rule, stated
    table = [line for line in text.splitlines() if line.startswith("| ")]
    assert [row.split(" | ")[0] for row in table[2:]] == ["| a", "| b", "| d"]  # best acc first
    assert "0.9000 ± 0.0141 [0.7729, 1.0271]" in table[2]  # mean ± std [95% t-CI]
    assert "The I-Con control (trial base) is dominated by 1 configuration(s): a." in text
    assert (
        "3 of 5 configurations are on the front" in text
        and "1 configuration(s) with a non-finite mean" in text
    )
    assert [f.file for f in view.figures] == ["pareto_front.png"]
    assert (tmp_path / "pareto_front.png").stat().st_size > 0
    written = pd.read_csv(tmp_path / "pareto_front.csv")
    assert sorted(written.loc[written["on_front"], "trial_id"]) == ["a", "b", "d"]


def test_no_control_and_no_finite_configuration_are_said(tmp_path):
    board = _board()
    view = pareto_view(board, OBJECTIVES, control="", params=[], out_dir=tmp_path)
    assert "There is no I-Con control in this sweep" in "\n".join(view.lines)
    empty = board.assign(**{f"{AUC} mean": np.nan})
    view = pareto_view(empty, OBJECTIVES, control="base", params=[], out_dir=tmp_path)
    assert view.lines[-1] == "No configuration has a finite mean of every objective."
    assert not view.figures


def test_the_sweep_runs_objectives_tag_is_read_back():
    assert _objectives('[["eval/linear_acc", "max"], ["eval/linear_acc_auc", "max"]]') == (
        (ACC, "max"),
        (AUC, "max"),
    )
    for text in ("", "not json", '{"a": 1}', '[["eval/nmi"]]', '[["eval/nmi", "up"]]'):
        assert _objectives(text) == ()
