"""`rkdo-tune audit` end to end: a reduced audit through the real CLI, Ray and `mlflow server`.

It is interrupted during its second study and resumed: the finished study is not run
again, the interrupted one continues. Its claims table has all seven rows, each with a
verdict, and two rows (claims 1 and 6) are recomputed here from the logged seed runs.
"""

from __future__ import annotations

import csv
import signal
import subprocess
import time
from pathlib import Path

import pytest
from _support import RKDO_TUNE, run_cli
from scipy import stats

from rkdo_tune.sweep.protocol import BUDGET_TRIAL_MARK
from rkdo_tune.tracking import layout as lay

pytestmark = [pytest.mark.slow, pytest.mark.ray]

VERDICTS = {"supported", "contradicted", "undetermined"}
TINY = ("--seeds", "3", "--steps-per-epoch", "2")


def _args(tmp_path: Path, uri: str, *more: str) -> list[str]:
    return [
        *("audit", "--name", "reduced", *TINY, "--experiment", "audit-test"),
        *("--tracking-uri", uri, "--storage", str(tmp_path / "results")),
        *("--out", str(tmp_path / "out"), *more),
    ]


def _interrupt_during_second_study(tmp_path: Path, uri: str) -> str:
    """Start the audit, SIGINT it once its alpha study is training; returns its stderr."""
    log = tmp_path / "first.err"
    with log.open("w") as err:
        proc = subprocess.Popen(
            [RKDO_TUNE, *_args(tmp_path, uri)],
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=err,
            text=True,
        )
        deadline = time.monotonic() + 400
        while "study alpha: running" not in log.read_text():
            assert proc.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "the alpha study never started"
            time.sleep(0.5)
        time.sleep(12)  # a few trials in: Tune has state to restore
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=300) == 130, log.read_text()[-3000:]
    return log.read_text()


def _holm(ps: list[float]) -> list[float]:
    """Holm's step-down, written out independently of rkdo_tune.inference."""
    order = sorted(range(len(ps)), key=lambda i: ps[i])
    out, running = [0.0] * len(ps), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(ps) - rank) * ps[i]))
        out[i] = running
    return out


def _seed_values(client, experiment_id: str, sweep_run_id: str, *, epochs: int, whole: int = 10):
    """{objective: {seed: (probe, epoch loss)}} of the budgets study's trials at `epochs`."""
    values: dict[str, dict[int, tuple[float, float]]] = {}
    trials = client.search_runs(
        [experiment_id], f"tags.`mlflow.parentRunId` = '{sweep_run_id}'", max_results=1000
    )
    for trial in trials:
        # A budget point's trial is `<id>@e<k>`; the whole run (the last budget) has no mark.
        trial_id = trial.data.tags.get(lay.TAG_TRIAL_ID, "")
        _, mark, point = trial_id.rpartition(BUDGET_TRIAL_MARK)
        at = int(point) if mark else whole
        if at != epochs or trial.info.status == "KILLED":
            continue
        seeds = client.search_runs(
            [experiment_id], f"tags.`mlflow.parentRunId` = '{trial.info.run_id}'"
        )
        for run in seeds:
            m = run.data.metrics
            values.setdefault(trial.data.params["objective"], {})[int(run.data.params["seed"])] = (
                m["eval/linear_acc"],
                m["train/epoch_loss"],
            )
    return values


def test_reduced_audit_resumes_and_decides_every_claim(tmp_path, mlflow_server):
    from mlflow.tracking import MlflowClient

    first = _interrupt_during_second_study(tmp_path, mlflow_server)
    assert "interrupted; continue it with --resume --name reduced" in first
    resumed = run_cli(*_args(tmp_path, mlflow_server, "--resume"), cwd=tmp_path, timeout=900)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert "study budgets: done in sweep run" in resumed.stderr
    assert "study alpha: resuming sweep reduced-alpha" in resumed.stderr

    check_finished_audit(MlflowClient(tracking_uri=mlflow_server), "audit-test", tmp_path / "out")


def check_finished_audit(client, experiment_name: str, out: Path) -> None:
    """What a finished audit must hold in MLflow and in its folder; two rows by hand."""
    eid = client.get_experiment_by_name(experiment_name).experiment_id
    audit = client.search_runs([eid], "tags.`rkdo.role` = 'audit'")
    assert len(audit) == 1 and audit[0].info.status == "FINISHED"
    sweeps = client.search_runs([eid], "tags.`rkdo.role` = 'sweep'")
    studies = {s.data.tags[lay.TAG_AUDIT_STUDY]: s for s in sweeps}
    assert set(studies) == {"budgets", "alpha", "depth", "adaptive"} and len(sweeps) == 4
    assert {s.data.tags[lay.TAG_PARENT] for s in sweeps} == {audit[0].info.run_id}
    assert all(s.info.status == "FINISHED" for s in sweeps)
    logged = {a.path for a in client.list_artifacts(audit[0].info.run_id, "audit")}
    assert {"audit/audit.md", "audit/claims.csv", "audit/tests.csv"} <= logged

    claims = list(csv.DictReader((out / "claims.csv").open()))
    assert [int(c["claim"]) for c in claims] == [1, 2, 3, 4, 5, 6, 7]
    assert all(c["verdict"] in VERDICTS for c in claims)
    markdown = (out / "audit.md").read_text()
    assert markdown.count("| **") == 7 and "rehearsal of the method" in markdown
    tests = list(csv.DictReader((out / "tests.csv").open()))

    # Claim 1, by hand: the whole runs' probes paired by seed, and the paper's loss measure.
    budgets = studies["budgets"].info.run_id
    final = _seed_values(client, eid, budgets, epochs=10)
    seeds = sorted(final["rkdo"])
    rkdo = [final["rkdo"][s][0] for s in seeds]
    icon = [final["icon"][s][0] for s in seeds]
    (row,) = [t for t in tests if t["claim"] == "1"]
    assert float(row["p"]) == pytest.approx(stats.ttest_rel(rkdo, icon).pvalue)
    assert float(row["delta"]) == pytest.approx(sum(rkdo) / 3 - sum(icon) / 3)
    loss = {obj: [final[obj][s][1] for s in seeds] for obj in ("rkdo", "icon")}
    saving = [100 * (i - r) / i for r, i in zip(loss["rkdo"], loss["icon"], strict=True)]
    assert f"{sum(saving) / 3:+.1f}%" in markdown

    # Claim 6, by hand: the 1-epoch budget points paired by seed.
    early = _seed_values(client, eid, budgets, epochs=1)
    (one,) = [t for t in tests if t["test"] == "Δ probe at 1 epoch"]
    a = [early["rkdo"][s][0] for s in seeds]
    b = [early["icon"][s][0] for s in seeds]
    assert float(one["p"]) == pytest.approx(stats.ttest_rel(a, b).pvalue)

    # The audit-wide family: Holm over every test once.
    unique = {(t["study"], t["test"]): t for t in tests}
    keys = [k for k, t in unique.items() if t["p"] not in ("", "nan")]
    adjusted = _holm([float(unique[k]["p"]) for k in keys])
    for k, p in zip(keys, adjusted, strict=True):
        assert float(unique[k]["p_audit_holm"]) == pytest.approx(p)
    assert f"**audit-wide**: {len(keys)} tests" in markdown
