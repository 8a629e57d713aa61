"""The trial's outbox against a real `mlflow server` that goes away and comes back.

Writes return at once while the server is down; what they carry arrives once
it is back: sent by the trial itself at its end, or, when the trial's process
is gone, by the driver from the journal it left. Re-sending adds no duplicate.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
from _mlflow_server import MlflowServer
from matplotlib.figure import Figure
from mlflow import MlflowClient

from rkdo_tune.errors import EnvironmentFailure
from rkdo_tune.tracking import layout as lay
from rkdo_tune.tracking._client import create_run, log_metrics, log_params, make_metric, set_tags
from rkdo_tune.tracking._outbox import Journal, journals_in, send_left_behind, send_outbox
from rkdo_tune.tracking._outbox_client import OutboxClient

STEPS = 50
# MLflow's own retry window, shortened: a request to an away server fails in seconds.
SHORT_WINDOW = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "3"}

WRITE_WHILE_AWAY = """
import sys
from rkdo_tune.tracking._outbox_client import OutboxClient
from rkdo_tune.tracking._client import create_run, log_metrics, make_metric
client = OutboxClient(sys.argv[1], sys.argv[2])
run = create_run(client, experiment_id=sys.argv[3], run_name="left", tags={"k": "v"})
log_metrics(client, run, [make_metric("loss", 1.0 / s, s, 1000 + s) for s in range(1, 21)])
client.set_terminated(run, status="FINISHED")
print("sent" if client.close(wait_s=5) else "left")
"""


@pytest.fixture
def server(tmp_path, monkeypatch):
    for name, value in SHORT_WINDOW.items():
        monkeypatch.setenv(name, value)
    server = MlflowServer(tmp_path / "server")
    (tmp_path / "server").mkdir()
    server.start()
    yield server
    server.stop()


def _log_a_trial(client: MlflowClient, experiment_id: str) -> tuple[str, str]:
    """What a trial writes: runs (one naming the other), params, metrics, tags, artifacts."""
    parent = create_run(client, experiment_id=experiment_id, run_name="trial", tags={"k": "v"})
    child = create_run(
        client, experiment_id=experiment_id, run_name="seed", tags={lay.TAG_PARENT: parent}
    )
    log_params(client, parent, {"alpha": 0.5, "depth": 3})
    log_metrics(client, child, [make_metric("loss", 1.0 / s, s, 1000 + s) for s in range(1, 51)])
    set_tags(client, parent, {lay.TAG_STATUS: "completed", lay.TAG_CONTINUES: child})
    client.log_text(parent, "hello", "notes/hello.txt")
    figure = Figure()
    figure.add_subplot().plot([1, 2, 3])
    client.log_figure(child, figure, "plots/curve.png")
    for run in (child, parent):
        client.set_terminated(run, status="FINISHED")
    return parent, child


def _check_arrived(client: MlflowClient, experiment_id: str) -> None:
    runs = {r.info.run_name: r for r in client.search_runs([experiment_id])}
    assert sorted(runs) == ["seed", "trial"]
    parent, child = runs["trial"], runs["seed"]
    assert child.data.tags[lay.TAG_PARENT] == parent.info.run_id  # the placeholder resolved
    assert parent.data.tags[lay.TAG_CONTINUES] == child.info.run_id
    assert parent.data.params == {"alpha": "0.5", "depth": "3"}
    history = client.get_metric_history(child.info.run_id, "loss")
    assert sorted(p.step for p in history) == list(range(1, STEPS + 1))
    assert {r.info.status for r in runs.values()} == {"FINISHED"}
    assert [a.path for a in client.list_artifacts(parent.info.run_id, "notes")] == [
        "notes/hello.txt"
    ]
    assert [a.path for a in client.list_artifacts(child.info.run_id, "plots")] == [
        "plots/curve.png"
    ]


@pytest.mark.slow
def test_writes_never_wait_for_an_away_server_and_arrive_at_the_trials_end(server, tmp_path):
    experiment_id = MlflowClient(server.uri).create_experiment("outage")
    outbox = OutboxClient(server.uri, str(tmp_path / "outbox"))
    server.stop()
    started = time.monotonic()
    _log_a_trial(outbox, experiment_id)
    assert time.monotonic() - started < 2.0, "a write waited for the server"
    time.sleep(5)  # the sender has failed and waits for the server meanwhile
    assert outbox.journal.has_pending()
    server.start()
    assert outbox.close() is True
    _check_arrived(MlflowClient(server.uri), experiment_id)
    assert journals_in(tmp_path / "outbox") == []


@pytest.mark.slow
def test_a_journal_whose_trial_is_gone_is_sent_by_the_driver_once_it_is_back(server, tmp_path):
    client = MlflowClient(server.uri)
    experiment_id = client.create_experiment("left")
    folder = tmp_path / "outbox"
    server.stop()
    done = subprocess.run(
        [sys.executable, "-c", WRITE_WHILE_AWAY, server.uri, str(folder), experiment_id],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.stdout.strip() == "left", done.stderr[-2000:]
    assert len(journals_in(folder)) == 1
    with pytest.raises(EnvironmentFailure) as caught:  # still away: one line, where they wait
        send_left_behind(client, str(folder), uri=server.uri)
    assert str(folder) in str(caught.value) and "--resume" in str(caught.value)
    server.start()
    send_left_behind(client, str(folder), uri=server.uri)
    assert journals_in(folder) == []
    [run] = client.search_runs([experiment_id])
    assert run.info.status == "FINISHED" and run.data.tags["k"] == "v"
    assert len(client.get_metric_history(run.info.run_id, "loss")) == 20
    assert not folder.exists()  # nothing waits: the empty folder is gone
    # A journal cut off after its records were sent but before they were marked done.
    folder.mkdir()
    again = Journal(folder / "again.jsonl")
    metrics = [["loss", 1.0 / s, 1000 + s, s] for s in range(1, 21)]
    batch = {"run": run.info.run_id, "metrics": metrics, "params": [], "tags": [["k", "v"]]}
    again.append({"seq": 0, "op": "log_batch", **batch})
    with warnings.catch_warnings(record=True) as caught_warnings:
        warnings.simplefilter("always")
        assert send_outbox(client, folder, lock_wait_s=0) == []
    assert not [w for w in caught_warnings if "refused" in str(w.message)]
    assert len(client.get_metric_history(run.info.run_id, "loss")) == 20


def test_a_journal_is_strict_json_lines_that_a_torn_last_line_does_not_break(tmp_path):
    journal = Journal(tmp_path / "j.jsonl")
    ended = {"run": "r", "status": "FINISHED", "end_time": 1}
    journal.append({"seq": 0, "op": "set_terminated", **ended})
    journal.append({"done": 0})
    with journal.path.open("a") as handle:
        handle.write('{"seq": 1, "op": "log_te')  # the process died mid-line
    records, created, done = journal.read()
    assert [r["seq"] for r in records] == [0] and done == {0} and created == {}
    assert all(json.loads(line) for line in journal.path.read_text().splitlines()[:2])
    assert not journal.has_pending()


def test_the_outbox_folder_sits_beside_the_trials_or_in_a_temp_folder_for_uris():
    from rkdo_tune.tracking._outbox_client import outbox_folder

    assert outbox_folder("/r/sweep") == Path("/r/sweep/mlflow-outbox")
    assert outbox_folder("s3://bucket/r/sweep").parts[-2:] == ("mlflow-outbox", "sweep")
