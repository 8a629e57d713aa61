"""The Verdict of `rkdo-tune report`, from a sweep logged with MlflowClient in a sqlite store.

The sweep has the writer's layout: a sweep run tagged with the best, the baseline
and the confirmed trials; search-arm trials, a baseline-arm trial, and
confirmation trials on fresh seeds, each with its seed runs and their final
metrics. Every number checked here is recomputed from the logged values with
scipy and `inference.holm`.
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from _support import run_cli
from mlflow import MlflowClient
from mlflow.entities import Metric, Param
from scipy import stats

from rkdo_tune import metrics as m
from rkdo_tune.cli import main
from rkdo_tune.config import TrialConfig
from rkdo_tune.inference import holm
from rkdo_tune.tracking import layout as lay

pytestmark = pytest.mark.slow

SEARCH_SEEDS = (42, 123, 456)
FRESH_SEEDS = (7, 8, 9, 10, 11, 12)
EVAL_STEPS = (22, 44)
FINAL_METRICS = (*m.VERDICT_METRICS, m.TRAIN_EPOCH_LOSS)
# Search trial id -> alpha, and the accuracy level each configuration reaches.
SEARCH = {"aa_00000": 0.1, "aa_00001": 0.3, "aa_00002": 0.6, "aa_00003": 0.9}
LEVEL = {0.1: 0.90, 0.3: 0.94, 0.6: 0.93, 0.9: 0.80}
BASELINE, BASELINE_LEVEL = "aa_00004", 0.92
BEST, SECOND = "aa_00001", "aa_00002"
CONFIRMS = {"bb_00000": BEST, "bb_00001": SECOND, "bb_00002": BASELINE}


def _finals(rng: np.random.Generator, level: float, objective: str) -> dict[str, float]:
    """Final values of one seed run: accuracies near `level`, losses that go with them."""
    acc = level + rng.normal(0, 0.003)
    return {
        m.EVAL_LINEAR_ACC: acc,
        m.EVAL_KNN_ACC: acc - 0.03 + rng.normal(0, 0.004),
        m.EVAL_NMI: 0.8 * acc + rng.normal(0, 0.01),
        m.EVAL_ARI: 0.7 * acc + rng.normal(0, 0.01),
        m.EVAL_NEIGHBORHOOD_ACC: acc - 0.05 + rng.normal(0, 0.005),
        m.EVAL_YARDSTICK_LOSS: 3.0 - acc + rng.normal(0, 0.01),
        m.EVAL_YARDSTICK_COLD: 4.0 - acc + rng.normal(0, 0.01),
        m.EVAL_YARDSTICK_WARM: 2.5 - acc + rng.normal(0, 0.01),
        m.TRAIN_EPOCH_LOSS: (1.6 if objective == "rkdo" else 2.3) + rng.normal(0, 0.02),
    }


def _log_seed(client, experiment_id, trial_run, trial_id, config, finals) -> None:
    run = client.create_run(
        experiment_id,
        run_name=f"{trial_id}-seed{config.seed}",
        tags={
            lay.TAG_PARENT: trial_run,
            lay.TAG_ROLE: lay.ROLE_SEED,
            lay.TAG_TRIAL_ID: trial_id,
            lay.TAG_NODE_ID: "node0",
            lay.TAG_SEED: str(config.seed),
            lay.TAG_STATUS: "completed",
        },
    )
    # Each metric at two evaluations: the report must take the last one.
    metrics = [Metric(k, v - 0.1, 0, EVAL_STEPS[0]) for k, v in finals.items()]
    metrics += [Metric(k, v, 0, EVAL_STEPS[1]) for k, v in finals.items()]
    metrics += [Metric(m.TRAIN_LOSS, 2.0 - 0.01 * s, 0, s) for s in range(1, EVAL_STEPS[1] + 1)]
    metrics += [Metric(m.DIAG_STEPS, float(EVAL_STEPS[1]), 0, EVAL_STEPS[1])]
    params = [Param(k, str(v)) for k, v in config.to_dict().items()]
    client.log_batch(run.info.run_id, metrics=metrics, params=params)
    client.set_terminated(run.info.run_id)


def _log_trial(client, experiment_id, parent, trial_id, *, params, role, seeds, level, rng):
    """One trial run with its seed runs; returns {metric: {seed: final value}}."""
    config = TrialConfig(dataset="digits", epochs=2, **params)
    tags = {
        lay.TAG_PARENT: parent,
        lay.TAG_ROLE: lay.ROLE_TRIAL,
        lay.TAG_TRIAL_ID: trial_id,
        lay.TAG_NODE_ID: "node0",
        lay.TAG_SEEDS: ",".join(map(str, seeds)),
        lay.TAG_STATUS: "completed",
        **role,
    }
    trial = client.create_run(experiment_id, run_name=trial_id, tags=tags)
    logged = [Param(k, str(v)) for k, v in params.items() if k != "objective"]
    logged += [Param(f"{lay.CONFIG_PARAM_PREFIX}{k}", str(v)) for k, v in config.to_dict().items()]
    client.log_batch(trial.info.run_id, params=[p for p in logged if p.key != "config.seed"])
    values: dict[str, dict[int, float]] = {k: {} for k in FINAL_METRICS}
    for seed in seeds:
        finals = _finals(rng, level, config.objective)
        seeded = TrialConfig(**{**config.to_dict(), "seed": seed})
        _log_seed(client, experiment_id, trial.info.run_id, trial_id, seeded, finals)
        for key, value in finals.items():
            values[key][seed] = value
    client.set_terminated(trial.info.run_id)
    return values


def log_study(
    client, *, name: str, confirm: bool, artifacts: str, best_tag: str = BEST
) -> tuple[str, dict]:
    """A sweep with a baseline arm (and a confirmation stage when `confirm`)."""
    found = client.get_experiment_by_name("alpha_ablation")
    experiment_id = (
        found.experiment_id
        if found
        else client.create_experiment("alpha_ablation", artifact_location=artifacts)
    )
    tags = {
        lay.TAG_ROLE: lay.ROLE_SWEEP,
        lay.TAG_SWEEP_NAME: name,
        lay.TAG_SPACE_NAME: "alpha_ablation",
        lay.TAG_METRIC: m.EVAL_LINEAR_ACC,
        lay.TAG_MODE: "max",
        lay.TAG_BEST_TRIAL_ID: best_tag,
        lay.TAG_BASELINE_TRIAL_ID: BASELINE,
    }
    if confirm:
        tags[lay.TAG_CONFIRMED_TRIAL_IDS] = f"{BEST},{SECOND}"
    parent = client.create_run(experiment_id, run_name=name, tags=tags).info.run_id
    spec = {"type": "float", "low": 0.05, "high": 1.0, "log": True}
    client.log_batch(
        parent,
        params=[
            Param(f"{lay.SPEC_PARAM_PREFIX}alpha", json.dumps(spec)),
            Param(lay.PARAM_SEEDS, ",".join(map(str, SEARCH_SEEDS))),
        ],
    )
    rng, values = np.random.default_rng(11), {}
    search = {lay.TAG_ARM: "search", lay.TAG_STAGE: "search"}
    for trial_id, alpha in SEARCH.items():
        values[trial_id] = _log_trial(
            client, experiment_id, parent, trial_id, params={"objective": "rkdo", "alpha": alpha},
            role=search, seeds=SEARCH_SEEDS, level=LEVEL[alpha], rng=rng,
        )  # fmt: skip
    baseline = {lay.TAG_ARM: "baseline", lay.TAG_STAGE: "search"}
    values[BASELINE] = _log_trial(
        client, experiment_id, parent, BASELINE, params={"objective": "icon"}, role=baseline,
        seeds=SEARCH_SEEDS, level=BASELINE_LEVEL, rng=rng,
    )  # fmt: skip
    for trial_id, confirmed in CONFIRMS.items() if confirm else ():
        arm = "baseline" if confirmed == BASELINE else "search"
        role = {lay.TAG_ARM: arm, lay.TAG_STAGE: "confirmation", lay.TAG_CONFIRMS: confirmed}
        params = {"objective": "icon"} if confirmed == BASELINE else {"alpha": SEARCH[confirmed]}
        level = BASELINE_LEVEL if confirmed == BASELINE else LEVEL[SEARCH[confirmed]]
        values[trial_id] = _log_trial(
            client, experiment_id, parent, trial_id, params=params, role=role,
            seeds=FRESH_SEEDS, level=level, rng=rng,
        )  # fmt: skip
    client.set_terminated(parent)
    return parent, values


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    folder = tmp_path_factory.mktemp("store")
    uri, artifacts = f"sqlite:///{folder / 'mlflow.db'}", (folder / "artifacts").as_uri()
    client = MlflowClient(tracking_uri=uri)
    confirmed = log_study(client, name="confirmed", confirm=True, artifacts=artifacts)
    unconfirmed = log_study(
        client, name="unconfirmed", confirm=False, artifacts=artifacts, best_tag="aa_00002"
    )
    return {"uri": uri, "confirmed": confirmed, "unconfirmed": unconfirmed}


@pytest.fixture(scope="module")
def report(store, tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "out"
    parent, values = store["confirmed"]
    proc = run_cli(
        "report", "--sweep", parent, "--tracking-uri", store["uri"], "--out", str(out), timeout=180
    )
    assert proc.returncode == 0, proc.stderr
    return {"out": out, "md": (out / "report.md").read_text(), "values": values}


def _csv(path) -> list[dict[str, str]]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


def _section(markdown: str, title: str) -> str:
    start = markdown.index(f"## {title}\n")
    end = markdown.find("\n## ", start + 1)
    return markdown[start : end if end > 0 else None]


def _pair(values, a: str, b: str, metric: str, seeds) -> tuple[list[float], list[float]]:
    return [values[a][metric][s] for s in seeds], [values[b][metric][s] for s in seeds]


def test_report_opens_with_the_verdict_naming_both_trials_and_the_fresh_seeds(report):
    md = report["md"]
    headings = [line for line in md.splitlines() if line.startswith("## ")]
    assert headings[0] == "## Verdict"
    verdict = _section(md, "Verdict")
    assert "\n**RKDO (α = 0.3) vs I-Con baseline on linear probe: " in verdict  # the headline
    assert f"Best RKDO configuration: trial `{BEST}` (α = 0.3)" in verdict
    assert f"Control: trial `{BASELINE}`, the baseline arm" in verdict
    assert "Estimated on fresh seeds (stage confirmation)" in verdict
    assert f"`bb_00000` (re-runs `{BEST}`) and `bb_00002` (re-runs `{BASELINE}`)" in verdict
    assert "seeds 7, 8, 9, 10, 11, 12" in verdict and "winner's curse" not in verdict
    assert "Warning" not in verdict


def test_verdict_numbers_are_scipys_on_the_fresh_seeds_with_one_holm_family(report):
    values, rows = report["values"], _csv(report["out"] / "verdict.csv")
    by_metric = {row["metric"]: row for row in rows}
    raw = []
    for metric in m.VERDICT_METRICS:
        a, b = _pair(values, "bb_00000", "bb_00002", metric, FRESH_SEEDS)
        test = stats.ttest_rel(a, b)
        ci = test.confidence_interval()
        row = by_metric[metric]
        assert row["stage"] == "confirmation" and int(row["n"]) == len(FRESH_SEEDS)
        assert float(row["delta"]) == pytest.approx(np.mean(a) - np.mean(b), abs=1e-12)
        assert (float(row["ci_lo"]), float(row["ci_hi"])) == pytest.approx((ci.low, ci.high))
        assert float(row["p_value"]) == pytest.approx(test.pvalue, rel=1e-9)
        assert float(row["p_wilcoxon"]) == pytest.approx(stats.wilcoxon(a, b).pvalue, rel=1e-9)
        raw.append(test.pvalue)
    adjusted = holm(raw)
    assert [float(by_metric[k]["p_holm"]) for k in m.VERDICT_METRICS] == pytest.approx(adjusted)
    assert by_metric[m.TRAIN_EPOCH_LOSS]["p_holm"] == ""  # not comparable: outside the family
    verdict = _section(report["md"], "Verdict")
    linear = m.VERDICT_METRICS.index(m.EVAL_LINEAR_ACC)
    a, b = _pair(values, "bb_00000", "bb_00002", m.EVAL_LINEAR_ACC, FRESH_SEEDS)
    ci = stats.ttest_rel(a, b).confidence_interval()
    cells = f"| [{ci.low:+.4f}, {ci.high:+.4f}] | {raw[linear]:.3g} |"
    assert any(
        line.startswith("| linear probe (higher is better) | secondary | 6 |") and cells in line
        for line in verdict.split("\n")
    )
    wilcoxon = stats.wilcoxon(a, b).pvalue  # shown from 6 pairs on
    sentence = f"p_Holm = {adjusted[linear]:.2g}, p_Wilcoxon = {wilcoxon:.2g}, 6 fresh seeds)"
    assert (
        f"RKDO (α = 0.3) vs I-Con baseline on linear probe: {np.mean(a) - np.mean(b):+.3f}"
        in verdict
    )
    assert sentence in verdict
    assert f"Holm family 'verdict', {len(m.VERDICT_METRICS)} tests" in verdict
    assert "- Not comparable: raw training loss" in verdict


def test_other_confirmed_configurations_are_their_own_family(report):
    values = report["values"]
    (row,) = _csv(report["out"] / "confirmed_vs_control.csv")
    assert (row["trial_id"], row["confirmation_trial"]) == (SECOND, "bb_00001")
    a, b = _pair(values, "bb_00001", "bb_00002", m.EVAL_LINEAR_ACC, FRESH_SEEDS)
    p = stats.ttest_rel(a, b).pvalue
    assert float(row["p_value"]) == pytest.approx(p) and float(row["p_holm"]) == pytest.approx(p)
    verdict = _section(report["md"], "Verdict")
    assert "Holm family 'other confirmed configurations', 1 test:" in verdict


def test_leaderboard_ranks_the_search_with_cis_ties_and_the_baseline_apart(report):
    values, rows = report["values"], _csv(report["out"] / "leaderboard.csv")
    assert [r["trial_id"] for r in rows] == [BEST, SECOND, "aa_00000", "aa_00003", BASELINE]
    assert [r["arm"] for r in rows] == ["search"] * 4 + ["baseline"]
    assert rows[-1]["rank"] == ""
    key = m.EVAL_LINEAR_ACC
    raw = []
    for row in rows[:4]:
        finals = [values[row["trial_id"]][key][s] for s in SEARCH_SEEDS]
        ci = stats.t.interval(0.95, len(finals) - 1, np.mean(finals), stats.sem(finals))
        assert (float(row[f"{key} ci_lo"]), float(row[f"{key} ci_hi"])) == pytest.approx(ci)
        if row["trial_id"] != BEST:
            raw.append(
                stats.ttest_rel(*_pair(values, BEST, row["trial_id"], key, SEARCH_SEEDS)).pvalue
            )
    adjusted = holm(raw)
    assert [float(r["p_holm_vs_best"]) for r in rows[1:4]] == pytest.approx(adjusted)
    tied = [r["tied_with_best"] == "True" for r in rows[:4]]
    assert tied == [True, *(p >= 0.05 for p in adjusted)]
    md = _section(report["md"], "Leaderboard")
    count = sum(tied)
    assert f"{count} of 4 configurations are statistically tied with the best at α = 0.05" in md
    assert "Holm over 3 tests" in md
    assert any(line.startswith(f"| baseline | {BASELINE} |") for line in md.splitlines())
    assert "bb_0000" not in md  # confirmation re-runs are not search configurations


def test_every_holm_family_is_listed_with_its_size(report):
    section = _section(report["md"], "Multiple comparisons")
    matched = _csv(report["out"] / "matched_comparison.csv")
    tests = sum(1 for row in matched if row["p_value"] not in ("", "nan"))
    assert len({(r["rkdo_trial"], r["icon_trial"]) for r in matched}) == 4  # each α vs baseline
    for name, size in (
        ("verdict", len(m.VERDICT_METRICS)),  # no primary recorded: all of them
        ("other confirmed configurations", 1),
        ("ties with the best", 3),
        ("matched settings", tests),
    ):
        assert f"| {name} | {size} |" in section
    assert f"Holm family 'matched settings', {tests} tests" in report["md"]


def test_compute_to_target_and_claims_use_the_same_best(report):
    claims = _csv(report["out"] / "paper_claims.csv")
    assert (claims[0]["compared"], claims[0]["rkdo_trial"], claims[0]["icon_trial"]) == (
        "verdict",
        BEST,
        BASELINE,
    )
    scopes = {row["scope"] for row in _csv(report["out"] / "compute_to_target.csv")}
    assert {f"best: {BEST}", f"best: {BASELINE}"} <= scopes


def test_without_confirmation_the_verdict_warns_of_the_winners_curse(store, tmp_path, capsys):
    parent, values = store["unconfirmed"]
    with pytest.raises(SystemExit) as exit_info:
        main(["report", "--sweep", parent, "--tracking-uri", store["uri"], "--out", str(tmp_path)])
    assert exit_info.value.code == 0, capsys.readouterr().err
    verdict = _section((tmp_path / "report.md").read_text(), "Verdict")
    assert "Estimated on the search seeds 42, 123, 456 (stage search)" in verdict
    assert "winner's curse" in verdict
    assert f"tag names aa_00002 as the best trial, but the final seed-means rank {BEST}" in verdict
    by_metric = {row["metric"]: row for row in _csv(tmp_path / "verdict.csv")}
    a, b = _pair(values, BEST, BASELINE, m.EVAL_NMI, SEARCH_SEEDS)
    assert float(by_metric[m.EVAL_NMI]["p_value"]) == pytest.approx(stats.ttest_rel(a, b).pvalue)
    assert by_metric[m.EVAL_NMI]["p_wilcoxon"] == ""  # NaN: 3 pairs, no Wilcoxon
    assert "n/a (< 6 pairs)" in verdict
    assert "other confirmed" not in verdict
