"""The trial's MLflow client: writes go through the outbox and never hold up training.

`OutboxClient` is an `MlflowClient` whose writes (create_run, log_batch,
set_terminated, log_text, log_figure) return at once: each becomes a journal
record (see `_outbox`) that one sender thread sends in order. A new run gets a
placeholder id until the server assigns the real one; later records, and tag
values naming it, are resolved on the way out. While the server is away the
sender waits for it (a health probe every few seconds) and training goes on.

At the end of the trial `close` waits for the sender as long as the server
answers; what is still unsent stays in the journal, for the driver to send at
the end of the sweep or on `--resume`.
"""

from __future__ import annotations

import itertools
import queue
import tempfile
import threading
import time
import uuid
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, Run, RunData, RunInfo, RunTag, ViewType
from mlflow.store.entities.paged_list import PagedList

from rkdo_tune.errors import EnvironmentFailure
from rkdo_tune.tracking._client import RUNNING, first_line, now_ms, open_client
from rkdo_tune.tracking._outbox import (
    JOURNAL_SUFFIX,
    OUTBOX_DIR_NAME,
    PLACEHOLDER_PREFIX,
    Journal,
    Record,
    apply,
    is_transient,
)
from rkdo_tune.tracking._uri import check_reachable

if TYPE_CHECKING:
    from matplotlib.figure import Figure

PROBE_S = 2.0  # while the server is away: how often to ask /health
END_WAIT_S = 60.0  # at the end of a trial: the longest wait for a sender still sending


def outbox_folder(experiment_path: str) -> Path:
    """Where a sweep's trials keep their journals: beside its trial directories.

    Storage given as a URI (s3://...) is no local folder: then a temp folder of the node.
    """
    if "://" in experiment_path or not experiment_path:
        name = experiment_path.rstrip("/").rsplit("/", 1)[-1] or "default"
        return Path(tempfile.gettempdir()) / "rkdo-tune" / OUTBOX_DIR_NAME / name
    return Path(experiment_path) / OUTBOX_DIR_NAME


def _stub_run(run_id: str, experiment_id: str, run_name: str | None, params: Mapping) -> Run:
    info = RunInfo(run_id, experiment_id, "", RUNNING, now_ms(), None, "active", run_name=run_name)
    return Run(info, RunData(params=[Param(k, v) for k, v in params.items()]))


class OutboxClient(MlflowClient):
    """Writes journaled and sent by a background thread; reads go to the server directly."""

    def __init__(self, uri: str, folder: str) -> None:
        """`folder`: the sweep's outbox folder (`outbox_folder`); "" for a temp folder."""
        self._sender_client = open_client(uri)  # for SQLite: the store is created once, locked
        super().__init__(tracking_uri=uri)
        self.uri = uri
        where = Path(folder) if folder else outbox_folder("")
        where.mkdir(parents=True, exist_ok=True)
        self.journal = Journal(where / f"{uuid.uuid4().hex[:16]}{JOURNAL_SUFFIX}")
        self.journal.lock.acquire(timeout=0)  # a fresh name: only this trial writes it
        self._seq = itertools.count()
        self._created: dict[str, tuple[str, str | None, dict[str, str]]] = {}
        self._queue: queue.Queue[Record | None] = queue.Queue()
        self._online = threading.Event()
        self._online.set()
        self._drained = threading.Event()
        self._warned_search = False
        threading.Thread(target=self._send_all, name="mlflow-outbox", daemon=True).start()

    # ----- writes: journaled, then queued -------------------------------------------------
    def _put(self, op: str, seq: int | None = None, **fields: Any) -> None:
        record = {"seq": next(self._seq) if seq is None else seq, "op": op, **fields}
        self.journal.append(record)
        self._queue.put(record)

    def create_run(
        self,
        experiment_id: str,
        start_time: int | None = None,
        tags: dict[str, Any] | None = None,
        run_name: str | None = None,
    ) -> Run:
        ref = f"{PLACEHOLDER_PREFIX}{uuid.uuid4().hex}"
        texts = {key: str(value) for key, value in (tags or {}).items()}
        self._put(
            "create_run",
            ref=ref,
            experiment_id=experiment_id,
            run_name=run_name,
            tags=list(texts.items()),
            start_time=start_time or now_ms(),
        )
        self._created[ref] = (experiment_id, run_name, {})
        return _stub_run(ref, experiment_id, run_name, {})

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
        synchronous: bool | None = None,
    ) -> None:
        if run_id in self._created:
            self._created[run_id][2].update({p.key: p.value for p in params})
        self._put(
            "log_batch",
            run=run_id,
            metrics=[[m.key, m.value, m.timestamp, m.step] for m in metrics],
            params=[[p.key, p.value] for p in params],
            tags=[[t.key, t.value] for t in tags],
        )

    def set_terminated(
        self, run_id: str, status: str | None = None, end_time: int | None = None
    ) -> None:
        self._put(
            "set_terminated", run=run_id, status=status or "FINISHED", end_time=end_time or now_ms()
        )

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        self._put("log_text", run=run_id, text=text, artifact_file=artifact_file)

    def log_figure(
        self,
        run_id: str,
        figure: Figure,
        artifact_file: str,
        *,
        save_kwargs: dict[str, Any] | None = None,
    ) -> None:
        """Rendered now (the figure may change later), sent as a file of the journal's blobs."""
        seq = next(self._seq)
        target = Path(artifact_file)
        blob = Path(str(seq)) / target.name
        (self.journal.blobs / blob).parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(self.journal.blobs / blob, **(save_kwargs or {}))
        folder = str(target.parent) if str(target.parent) != "." else None
        self._put("log_artifact", seq=seq, run=run_id, file=str(blob), artifact_path=folder)

    # ----- reads ------------------------------------------------------------------------
    def get_run(self, run_id: str) -> Run:
        """A run created here holds what was logged here (it may not be sent yet)."""
        if run_id in self._created:
            experiment_id, run_name, params = self._created[run_id]
            return _stub_run(run_id, experiment_id, run_name, params)
        return super().get_run(run_id)

    def search_runs(
        self,
        experiment_ids: list[str],
        filter_string: str = "",
        run_view_type: int = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        order_by: list[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[Run]:
        """The server's answer; nothing while it is away (a restarted trial then cannot
        find its earlier attempt, which the driver closes at the end of the sweep)."""
        if self._online.is_set() and self._server_answers():
            try:
                return super().search_runs(
                    experiment_ids, filter_string, run_view_type, max_results, order_by, page_token
                )
            except Exception as exc:
                if not is_transient(exc):
                    raise
        if not self._warned_search:
            self._warned_search = True
            warnings.warn("MLflow is unreachable: earlier runs not looked up", stacklevel=2)
        return PagedList([], None)

    def _server_answers(self) -> bool:
        """One quick probe (/health of a server; a SQLite store's folder), no retries."""
        try:
            check_reachable(self.uri, timeout=PROBE_S)
        except EnvironmentFailure:
            return False
        return True

    # ----- the sender thread -----------------------------------------------------------
    def _send_all(self) -> None:
        created: dict[str, str] = {}
        while (record := self._queue.get()) is not None:
            self._deliver(record, created)
        self.journal.remove()
        self.journal.lock.release()
        self._drained.set()

    def _deliver(self, record: Record, created: dict[str, str]) -> None:
        """Send one record, waiting out any outage; a refused record is reported, not retried."""
        while True:
            try:
                apply(self._sender_client, record, self.journal, created)
            except Exception as exc:
                if is_transient(exc):
                    self._online.clear()
                    self._wait_for_server()
                    continue
                warnings.warn(
                    f"MLflow refused a tracking record ({record['op']}): {first_line(exc)}",
                    stacklevel=2,
                )
            self.journal.append({"done": record["seq"]})
            self._online.set()
            return

    def _wait_for_server(self) -> None:
        time.sleep(PROBE_S)
        while not self._server_answers():
            time.sleep(PROBE_S)

    def close(self, wait_s: float = END_WAIT_S) -> bool:
        """No more records: wait for the sender while the server answers (at most `wait_s`).

        True when everything was sent; otherwise the rest waits in the journal.
        """
        self._queue.put(None)
        deadline = time.monotonic() + wait_s
        while not self._drained.wait(timeout=PROBE_S):
            if time.monotonic() > deadline or not self._server_answers():
                warnings.warn(
                    f"MLflow is unreachable: this trial's unsent tracking records wait in "
                    f"{self.journal.path}; the sweep sends them at its end or on --resume",
                    stacklevel=2,
                )
                return False
        return True
