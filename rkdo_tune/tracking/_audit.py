"""The audit's MLflow run: one parent per audit, each study's sweep run nested beneath it.

All of an audit's runs live in one experiment, because MLflow's UI nests runs
only within an experiment. On --resume the audit run is reattached by name and
each study's sweep run is read back to tell which studies are done.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from rkdo_tune.errors import UsageError
from rkdo_tune.redaction import redact_uri
from rkdo_tune.tracking import layout as lay
from rkdo_tune.tracking._client import (
    FINISHED,
    NEWEST_FIRST,
    RUNNING,
    MlflowClient,
    Run,
    create_run,
    finite_metric,
    log_metrics,
    log_params,
    now_ms,
    open_client,
    quick_http_failures,
    search_runs,
    set_tags,
    tracking_errors_as_one_line,
)
from rkdo_tune.tracking._parent import ensure_experiment
from rkdo_tune.tracking._uri import check_reachable, ui_lines


@dataclass(frozen=True)
class StudyRun:
    """A study's sweep run as recorded: its status, and whether its confirmation ran."""

    study: str
    run_id: str
    sweep_name: str
    status: str
    confirmed: bool

    def done(self, *, needs_confirmation: bool) -> bool:
        """FINISHED, with both its search and (where it has one) its confirmation complete."""
        return self.status == FINISHED and (self.confirmed or not needs_confirmation)


class AuditTracker:
    """Creates or reattaches the audit run; reads its studies' sweep runs; ends it."""

    def __init__(self, *, tracking_uri: str, experiment: str) -> None:
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self.experiment_id = ""
        self.run_id = ""
        self.name = ""

    def _client(self) -> MlflowClient:
        return open_client(self.tracking_uri)

    def latest_unfinished(self) -> str | None:
        """The name of the experiment's newest audit run that did not finish, if any."""
        prefix = "sqlite:///"
        if (
            self.tracking_uri.startswith(prefix)
            and not Path(self.tracking_uri[len(prefix) :]).exists()
        ):
            return None  # no store, so no audit: asking would create an empty one
        check_reachable(self.tracking_uri)
        with quick_http_failures(), tracking_errors_as_one_line(self.tracking_uri):
            client = self._client()
            found = client.get_experiment_by_name(self.experiment)
            if found is None:
                return None
            runs = search_runs(
                client,
                found.experiment_id,
                tags={lay.TAG_ROLE: lay.ROLE_AUDIT},
                order_by=NEWEST_FIRST,
            )
        open_runs = [r for r in runs if r.info.status != FINISHED]
        return open_runs[0].data.tags.get(lay.TAG_AUDIT_NAME) if open_runs else None

    def start(self, *, name: str, resume: bool, params: Mapping[str, object]) -> str:
        """Create the audit run (refused if the name is taken) or, on resume, reattach it."""
        check_reachable(self.tracking_uri)
        self.name = name
        with quick_http_failures(), tracking_errors_as_one_line(self.tracking_uri):
            client = self._client()
            self.experiment_id = ensure_experiment(client, self.experiment, uri=self.tracking_uri)
            found = self._audit_runs(client, name)
            if found and not resume:
                raise UsageError(
                    f"--name {name}: experiment {self.experiment} already holds this audit "
                    f"(MLflow run {found[0].info.run_id}); add --resume to continue it"
                )
            if not found and resume:
                raise UsageError(
                    f"--resume --name {name}: no audit of that name in experiment "
                    f"{self.experiment} at {redact_uri(self.tracking_uri)}"
                )
            tags = {lay.TAG_ROLE: lay.ROLE_AUDIT, lay.TAG_AUDIT_NAME: name}
            if found:
                self.run_id = found[0].info.run_id
                client.update_run(self.run_id, status=RUNNING)
            else:
                self.run_id = create_run(
                    client, experiment_id=self.experiment_id, run_name=name, tags=tags
                )
            log_params(client, self.run_id, params)  # only keys not yet logged
        return self.run_id

    def _audit_runs(self, client: MlflowClient, name: str) -> list[Run]:
        tags = {lay.TAG_ROLE: lay.ROLE_AUDIT, lay.TAG_AUDIT_NAME: name}
        return search_runs(client, self.experiment_id, tags=tags, order_by=NEWEST_FIRST)

    def studies(self) -> dict[str, StudyRun]:
        """Each study's sweep run beneath the audit run (the newest, where there are two)."""
        with tracking_errors_as_one_line(self.tracking_uri):
            client = self._client()
            runs = search_runs(
                client,
                self.experiment_id,
                tags={lay.TAG_PARENT: self.run_id, lay.TAG_ROLE: lay.ROLE_SWEEP},
                order_by=NEWEST_FIRST,
            )
        found: dict[str, StudyRun] = {}
        for run in runs:
            tags = run.data.tags
            study = tags.get(lay.TAG_AUDIT_STUDY, "")
            if study and study not in found:
                found[study] = StudyRun(
                    study=study,
                    run_id=run.info.run_id,
                    sweep_name=tags.get(lay.TAG_SWEEP_NAME, ""),
                    status=run.info.status,
                    confirmed=bool(tags.get(lay.TAG_CONFIRMED_TRIAL_IDS)),
                )
        return found

    def finish(
        self,
        *,
        status: str,
        tags: Mapping[str, str],
        metrics: Mapping[str, float],
        directory: Path | None,
    ) -> str:
        """Record the claims, log the audit folder, end the run; returns the artifact URI."""
        with tracking_errors_as_one_line(self.tracking_uri):
            client = self._client()
            set_tags(client, self.run_id, tags)
            stamp = now_ms()
            found = [finite_metric(k, v, 0, stamp) for k, v in metrics.items()]
            log_metrics(client, self.run_id, [f for f in found if f is not None])
            uri = ""
            if directory is not None:
                client.log_artifacts(self.run_id, str(directory), lay.ARTIFACT_AUDIT_DIR)
                uri = f"{client.get_run(self.run_id).info.artifact_uri}/{lay.ARTIFACT_AUDIT_DIR}"
            client.set_terminated(self.run_id, status=status)
        return uri

    def lines(self) -> list[str]:
        """Where the audit was logged and how to open it."""
        head = (
            f"MLflow: experiment {self.experiment} (id {self.experiment_id}), audit run "
            f"{self.run_id}, tracking URI {redact_uri(self.tracking_uri)}"
        )
        return [
            head,
            *ui_lines(self.tracking_uri, experiment_id=self.experiment_id, run_id=self.run_id),
        ]
