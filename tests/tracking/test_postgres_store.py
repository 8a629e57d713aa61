"""MLflow on PostgreSQL, as docker/README.md sets it up: a sweep, then `rkdo-tune report`.

A real PostgreSQL (Debian's package: initdb and pg_ctl in a temp dir, on a
loopback port) under `mlflow server --backend-store-uri postgresql://...`. The
smoke sweep logs to it and the report reads the whole sweep back.
"""

from __future__ import annotations

import csv
import json

import pytest
from _mlflow_server import MlflowServer
from _postgres import PostgresServer, missing
from _support import run_cli

from rkdo_tune import metrics as m
from rkdo_tune.tracking import layout as lay

pytestmark = [pytest.mark.slow, pytest.mark.ray]
SMOKE_STEPS = 10  # 2 epochs of 5 steps


@pytest.fixture(scope="module")
def postgres():
    reason = missing()
    if reason:
        pytest.skip(reason)
    server = PostgresServer()
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(scope="module")
def mlflow_on_postgres(postgres, tmp_path_factory):
    server = MlflowServer(tmp_path_factory.mktemp("mlflow-pg"), backend_uri=postgres)
    try:
        yield server.start()
    finally:
        server.stop()


def test_a_sweep_on_postgresql_is_read_back_in_full_by_the_report(
    postgres, mlflow_on_postgres, tmp_path
):
    uri = mlflow_on_postgres
    sweep = run_cli(
        "sweep",
        "--space",
        "smoke.yaml",
        "--name",
        "on-postgres",
        "--storage",
        str(tmp_path / "results"),
        "--tracking-uri",
        uri,
        "--experiment",
        "on-postgres",
        cwd=tmp_path,
    )
    assert sweep.returncode == 0, sweep.stdout[-2000:] + sweep.stderr[-3000:]
    trial_ids = {
        json.loads(p.read_text().splitlines()[-1])["trial_id"]
        for p in (tmp_path / "results" / "on-postgres").glob("*/result.json")
    }
    report = run_cli(
        "report", "--tracking-uri", uri, "--experiment", "on-postgres", "--out", "rep", cwd=tmp_path
    )
    assert report.returncode == 0, report.stdout[-2000:] + report.stderr[-3000:]
    with (tmp_path / "rep" / "leaderboard.csv").open() as handle:
        assert {row["trial_id"] for row in csv.DictReader(handle)} == trial_ids
    assert (tmp_path / "rep" / "report.md").read_text().strip()

    import psycopg2
    from mlflow import MlflowClient

    dsn = postgres.replace("+psycopg2", "")
    with psycopg2.connect(dsn) as db, db.cursor() as cursor:  # the runs live in PostgreSQL
        cursor.execute("SELECT count(*) FROM runs")
        assert cursor.fetchone()[0] == 1 + 2 * len(trial_ids)  # sweep, trial and seed runs
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("on-postgres")
    seeds = client.search_runs([experiment.experiment_id], f"tags.`{lay.TAG_ROLE}` = 'seed'")
    for seed in seeds:
        steps = client.get_metric_history(seed.info.run_id, m.TRAIN_LOSS)
        assert sorted(p.step for p in steps) == list(range(1, SMOKE_STEPS + 1))
