"""The outbox journal: what a trial has to send to MLflow, on disk until the server took it.

Each trial writes one JSON-lines journal into the sweep's outbox folder
(`<results>/<sweep>/mlflow-outbox/`): a record per MLflow write, in order, before it
is sent; then `{"done": seq}` once the server took it, and `{"created": ref,
"run_id": id}` once a run created under the placeholder `ref` has its real id.
A trial whose server was away longer than MLflow's retry window leaves its
journal behind; the driver sends the rest at the end of the sweep or on
`--resume`, and deletes the journal once every record is done. Re-sending a
record is harmless (MLflow drops duplicate metric points; tags and params are
set to the same values), so a journal cut off mid-send is sent again from its
first record not marked done.

Records (besides seq and op): create_run (ref, experiment_id, run_name, tags,
start_time), log_batch (run; metrics as [key, value, timestamp, step], params
and tags as [key, value]), set_terminated (run, status, end_time), log_text (run,
text, artifact_file), log_artifact (run, file in the blob folder, artifact_path).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import threading
import time
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from filelock import FileLock, Timeout
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from sqlalchemy.exc import OperationalError

from rkdo_tune.errors import EnvironmentFailure
from rkdo_tune.redaction import redact_uri
from rkdo_tune.tracking._client import first_line

OUTBOX_DIR_NAME = "mlflow-outbox"
JOURNAL_SUFFIX = ".jsonl"
PLACEHOLDER_PREFIX = "rkdo-pending-"
LOCK_WAIT_S = 30.0  # at the end of a sweep: how long to wait for trials still sending
LOCK_POLL_S = 0.5
# The lines MLflow's REST client raises once its own retries are spent (server away).
_UNREACHABLE = ("API request to ", " failed with ")

Record = dict[str, Any]


def is_transient(error: BaseException) -> bool:
    """True when the store was unreachable or busy; False for a request it refused."""
    if isinstance(error, OSError | requests.exceptions.RequestException | OperationalError):
        return True
    if isinstance(error, MlflowException):
        text = str(error)
        return text.startswith(_UNREACHABLE[0]) and _UNREACHABLE[1] in text
    return False


@dataclass
class Journal:
    """One trial attempt's journal file, its blob folder and its lock (held while it sends)."""

    path: Path
    lock: FileLock = field(init=False)
    _write: threading.Lock = field(init=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        # Not thread-local: the training thread takes it, the sender thread may release it.
        self.lock = FileLock(self.path.with_suffix(".lock"), thread_local=False)

    @property
    def blobs(self) -> Path:
        return self.path.with_suffix(".blobs")

    def append(self, line: Mapping[str, Any]) -> None:
        text = json.dumps(line, separators=(",", ":")) + "\n"
        with self._write, self.path.open("a", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()

    def read(self) -> tuple[list[Record], dict[str, str], set[int]]:
        """(records in order, {placeholder: run id}, seqs done); a torn last line is skipped."""
        records, created, done = [], {}, set()
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue  # the process died while writing this line
            if "op" in entry:
                records.append(entry)
            elif "created" in entry:
                created[entry["created"]] = entry["run_id"]
            elif "done" in entry:
                done.add(int(entry["done"]))
        return records, created, done

    def has_pending(self) -> bool:
        try:
            records, _, done = self.read()
        except FileNotFoundError:  # its trial just sent the last record
            return False
        return any(record["seq"] not in done for record in records)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
        shutil.rmtree(self.blobs, ignore_errors=True)
        Path(self.lock.lock_file).unlink(missing_ok=True)  # a waiter then finds no journal


def resolve(value: Any, created: Mapping[str, str]) -> Any:
    """A placeholder run id replaced by the real one (as run, tag or param value)."""
    if isinstance(value, str) and value.startswith(PLACEHOLDER_PREFIX):
        return created.get(value, value)
    return value


def _pairs(entries: list[list[Any]], created: Mapping[str, str]) -> Iterator[tuple[str, str]]:
    for key, value in entries:
        yield key, resolve(value, created)


def apply(client: MlflowClient, record: Record, journal: Journal, created: dict[str, str]) -> None:
    """Send one record; a new run's id is written to the journal before anything else."""
    op = record["op"]
    if op == "create_run":
        tags = dict(_pairs(record["tags"], created))
        run = client.create_run(
            record["experiment_id"],
            start_time=record["start_time"],
            tags=tags,
            run_name=record["run_name"],
        )
        created[record["ref"]] = run.info.run_id
        journal.append({"created": record["ref"], "run_id": run.info.run_id})
        return
    run_id = resolve(record["run"], created)
    if run_id.startswith(PLACEHOLDER_PREFIX):
        raise LookupError(f"run {run_id} was never created")
    if op == "log_batch":
        client.log_batch(
            run_id,
            metrics=[Metric(k, v, t, s) for k, v, t, s in record["metrics"]],
            params=[Param(k, v) for k, v in _pairs(record["params"], created)],
            tags=[RunTag(k, v) for k, v in _pairs(record["tags"], created)],
        )
    elif op == "set_terminated":
        client.set_terminated(run_id, status=record["status"], end_time=record["end_time"])
    elif op == "log_text":
        client.log_text(run_id, record["text"], record["artifact_file"])
    elif op == "log_artifact":
        local = journal.blobs / record["file"]
        client.log_artifact(run_id, str(local), artifact_path=record["artifact_path"])
    else:
        raise ValueError(f"unknown outbox record {op!r}")


def send_pending(client: MlflowClient, journal: Journal) -> None:
    """Send every record not yet done, in order, then remove the journal.

    A transient failure stops here (the caller decides when to try again); a
    record the server refuses is reported once and counted as done.
    """
    records, created, done = journal.read()
    for record in records:
        if record["seq"] in done:
            continue
        try:
            apply(client, record, journal, created)
        except Exception as exc:
            if is_transient(exc):
                raise
            warnings.warn(
                f"MLflow refused a tracking record ({record['op']}): {first_line(exc)}",
                stacklevel=2,
            )
        journal.append({"done": record["seq"]})
    journal.remove()


def journals_in(folder: Path) -> list[Journal]:
    return [Journal(path) for path in sorted(folder.glob(f"*{JOURNAL_SUFFIX}"))]


def send_outbox(client: MlflowClient, folder: Path, *, lock_wait_s: float) -> list[Path]:
    """Send what trials left in `folder`; returns the journals with records still unsent.

    A journal a live trial holds (its lock) is left to that trial once it has
    nothing pending, and otherwise waited for, up to `lock_wait_s` in all. A
    transient failure propagates.
    """
    deadline = time.monotonic() + lock_wait_s
    left = []
    for journal in journals_in(folder) if folder.is_dir() else []:
        while True:
            try:
                with journal.lock.acquire(timeout=LOCK_POLL_S):
                    if journal.path.exists():
                        send_pending(client, journal)
                break
            except Timeout:
                if not journal.has_pending():
                    break
                if time.monotonic() > deadline:
                    left.append(journal.path)
                    break
    return left


def send_left_behind(client: MlflowClient, folder: str, *, uri: str) -> None:
    """The driver's part: send the records trials could not, before it reads their runs.

    Runs at the end of a sweep and when one resumes. A server still away is one
    line that says where the records wait; they are sent on `--resume`.
    """
    if not folder:
        return
    try:
        left = send_outbox(client, Path(folder), lock_wait_s=LOCK_WAIT_S)
    except Exception as exc:
        if not is_transient(exc):
            raise
        waiting = len(journals_in(Path(folder)))
        raise EnvironmentFailure(
            f"tracking URI {redact_uri(uri)}: the server went away; the tracking records of "
            f"{waiting} trial(s) wait in {folder} and are sent by --resume once it is back"
        ) from None
    if left:
        warnings.warn(
            f"MLflow: {len(left)} trial(s) still sending; their records wait in {folder} "
            "and are sent by --resume if they do not arrive",
            stacklevel=2,
        )
    with contextlib.suppress(OSError):  # nothing waits: no empty folder among the trials'
        Path(folder).rmdir()
