"""Sweeps started at the same moment in one directory share one fresh `./mlflow.db`.

Real `rkdo-tune sweep --space smoke.yaml` processes, each with its own
embedded Ray: every one completes with its own parent run and its own trials,
none meets "database is locked", and the store opens cleanly afterwards.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
from pathlib import Path

import pytest
from _ray_local import kill_ray_started_under, short_ray_tmpdir
from _support import RKDO_TUNE, run_cli

from rkdo_tune.tracking import layout as lay
from rkdo_tune.tracking._store import leftover_migration_tables

pytestmark = [pytest.mark.slow, pytest.mark.ray]
SMOKE_TRIALS = 2


@pytest.fixture
def ray_env():
    ray_tmp = short_ray_tmpdir()
    yield {**os.environ, "RAY_TMPDIR": ray_tmp}
    kill_ray_started_under(ray_tmp)


def _start_together(count: int, cwd: Path, env: dict[str, str]) -> list[tuple[int, str, str]]:
    procs = [
        subprocess.Popen(
            [RKDO_TUNE, "sweep", "--space", "smoke.yaml"],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(count)
    ]
    outputs = [proc.communicate(timeout=900) for proc in procs]
    return [(proc.returncode, out, err) for proc, (out, err) in zip(procs, outputs, strict=True)]


@pytest.mark.parametrize("count", [2, 4])
def test_sweeps_started_together_on_a_fresh_store_all_complete(count, tmp_path, ray_env):
    from mlflow import MlflowClient

    finished = _start_together(count, tmp_path, ray_env)
    names = []
    for code, out, err in finished:
        assert code == 0, out[-2000:] + err[-4000:]
        assert "database is locked" not in err and "_alembic_tmp" not in err
        names.append(re.search(r"--name (\S+) --resume", out).group(1))
    assert len(set(names)) == count, f"two sweeps shared a name: {names}"

    database = tmp_path / "mlflow.db"
    assert leftover_migration_tables(database) == []
    with sqlite3.connect(database) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    client = MlflowClient(tracking_uri=f"sqlite:///{database}")  # a plain client, no lock
    experiment = client.get_experiment_by_name("smoke")
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    role = {r.info.run_id: r.data.tags.get(lay.TAG_ROLE) for r in runs}
    parents = {
        r.data.tags[lay.TAG_SWEEP_NAME]: r for r in runs if role[r.info.run_id] == lay.ROLE_SWEEP
    }
    assert sorted(parents) == sorted(names)
    for name, parent in parents.items():
        assert parent.info.status == "FINISHED"
        trials = [
            r
            for r in runs
            if r.data.tags.get(lay.TAG_PARENT) == parent.info.run_id
            and role[r.info.run_id] == lay.ROLE_TRIAL
        ]
        trial_dirs = [p for p in (tmp_path / "rkdo_results" / name).iterdir() if p.is_dir()]
        assert len(trials) == len(trial_dirs) == SMOKE_TRIALS
        assert all(r.info.status == "FINISHED" for r in trials)


def test_a_sweep_on_a_half_migrated_store_ends_with_one_line(tmp_path, ray_env):
    database = tmp_path / "mlflow.db"
    with sqlite3.connect(database) as db:  # what a migration interrupted mid-table leaves
        db.execute("CREATE TABLE _alembic_tmp_latest_metrics (key VARCHAR(250))")
    proc = run_cli("sweep", "--space", "smoke.yaml", cwd=tmp_path, env=ray_env, timeout=300)
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert "Traceback" not in proc.stderr
    assert str(database) in last and "half-migrated" in last and "mlflow db upgrade" in last
    results = tmp_path / "rkdo_results"
    assert not results.exists() or not any(results.iterdir()), "a trial started"
