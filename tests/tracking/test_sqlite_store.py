"""A SQLite store is created once under a lock beside it; a half-migrated one is one line.

Real processes race to open one fresh `mlflow.db` (MLflow migrates it on
first use); a store left half-migrated by an unlocked race is refused with the
repair commands, and those commands, run as printed, repair it.
"""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from _support import run_cli

from rkdo_tune.errors import EnvironmentFailure
from rkdo_tune.tracking._client import open_client
from rkdo_tune.tracking._store import leftover_migration_tables, lock_path

MLFLOW = str(Path(sys.executable).with_name("mlflow"))
OPEN_AND_WRITE = """
import sys
from rkdo_tune.tracking._client import open_client
client = open_client(sys.argv[1])
run = client.create_run("0")
client.log_metric(run.info.run_id, "x", 1.0)
print("opened")
"""


def _journal_mode(database: Path) -> str:
    with sqlite3.connect(database) as db:
        return db.execute("PRAGMA journal_mode").fetchone()[0]


def _half_migrated_store(tmp_path: Path) -> tuple[str, Path]:
    """A real store, then what an interrupted SQLite migration leaves: alembic's copy table."""
    database = tmp_path / "mlflow.db"
    uri = f"sqlite:///{database}"
    open_client(uri)
    with sqlite3.connect(database) as db:
        schema = db.execute("SELECT sql FROM sqlite_master WHERE name = 'tags'").fetchone()[0]
        db.execute(schema.replace('"tags"', "_alembic_tmp_tags", 1))
    return uri, database


@pytest.mark.slow
def test_four_processes_opening_one_fresh_store_all_succeed(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", OPEN_AND_WRITE, uri],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outputs = [proc.communicate(timeout=240) for proc in procs]
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0 and out.strip() == "opened", err[-3000:]
    database = tmp_path / "mlflow.db"
    assert leftover_migration_tables(database) == []
    assert lock_path(database).name == "mlflow.db.lock" and lock_path(database).exists()
    assert _journal_mode(database) == "wal"
    client = open_client(uri)
    assert len(client.search_runs(["0"])) == 4


def test_a_half_migrated_store_is_one_line_that_names_the_file_and_the_repair(tmp_path):
    _, database = _half_migrated_store(tmp_path / "elsewhere")  # this process opened that one
    copy = tmp_path / "mlflow.db"
    with sqlite3.connect(database) as source, sqlite3.connect(copy) as target:
        source.backup(target)  # not a file copy: the WAL may hold the newest pages
    broken = f"sqlite:///{copy}"
    with pytest.raises(EnvironmentFailure) as caught:
        open_client(broken)
    message = str(caught.value)
    assert "\n" not in message
    assert str(copy) in message and "half-migrated" in message and "_alembic_tmp_tags" in message
    # The repair, run exactly as the message prints it.
    sql = re.search(r"sqlite3 \S+ '([^']+)'", message).group(1)
    with sqlite3.connect(copy) as db:
        db.executescript(sql)
    upgrade = re.search(r"&& (mlflow db upgrade \S+)", message).group(1).split()
    done = subprocess.run([MLFLOW, *upgrade[1:]], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert leftover_migration_tables(copy) == []
    assert open_client(broken).search_experiments()


def test_report_on_a_half_migrated_store_prints_one_line_and_no_traceback(tmp_path):
    uri, database = _half_migrated_store(tmp_path)
    proc = run_cli("report", "--tracking-uri", uri, "--experiment", "x", cwd=tmp_path, timeout=120)
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert str(database) in lines[0] and "mlflow db upgrade" in lines[0]
