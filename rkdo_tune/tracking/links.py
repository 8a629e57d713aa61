"""Ready links to a sweep's trial runs in the MLflow UI, printed by the sweep and the report.

MLflow 3.17's UI opens an experiment on its GenAI screen unless the URL asks for
`workflowType=machine_learning` (it then remembers the choice in the browser). Its
runs page reads `searchFilter`, `orderByKey` and `orderByAsc` from the URL, and the
filter and order are MLflow's own `search_runs` syntax, so

    client.search_runs([experiment_id], filter_string=trial_filter(...),
                       order_by=[f"{RANK_ORDER_KEY} ASC"])

returns the rows the link shows, in its order. The order is the rank tag: the
store breaks a tie in a metric sort by start time, which need not agree with the
one definition of best (`SweepOutcome.ranked`). Importing this does not import MLflow.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass

from rkdo_tune.redaction import without_credentials
from rkdo_tune.tracking import layout as lay
from rkdo_tune.tracking._uri import sqlite_path
from rkdo_tune.verdict import STAGE_CONFIRMATION, STAGE_SEARCH

LOCAL_UI = "http://127.0.0.1:5000"  # where `mlflow ui` serves by default
WORKFLOW_TRAINING = "machine_learning"
RANK_ORDER_KEY = f"tags.`{lay.TAG_RANK}`"
SUPERSEDED_STATUS = "KILLED"  # an attempt a restarted trial replaced, or an interrupted one


@dataclass(frozen=True)
class RunsLink:
    """One view of the runs page: what it shows, and the URL."""

    label: str
    url: str
    search_filter: str
    order_by: str  # as `search_runs` takes it: "<key> ASC|DESC"


def ui_base(tracking_uri: str) -> str | None:
    """The UI's address: the server itself, or `mlflow ui` on a local SQLite store."""
    if tracking_uri.startswith(("http://", "https://")):
        return without_credentials(tracking_uri).rstrip("/")
    if sqlite_path(tracking_uri) is not None:
        return LOCAL_UI
    return None


def trial_filter(parent_run_id: str, *, stage: str) -> str:
    """The trial runs of one sweep and stage (the baseline arm included), no KILLED attempt."""
    return (
        f"tags.`{lay.TAG_PARENT}` = '{parent_run_id}' "
        f"and tags.`{lay.TAG_ROLE}` = '{lay.ROLE_TRIAL}' "
        f"and tags.`{lay.TAG_STAGE}` = '{stage}' "
        f"and attributes.status != '{SUPERSEDED_STATUS}'"
    )


def runs_url(base: str, experiment_id: str, *, search_filter: str, order_key: str) -> str:
    query = urllib.parse.urlencode(
        {
            "searchFilter": search_filter,
            "orderByKey": order_key,
            "orderByAsc": "true",
            "workflowType": WORKFLOW_TRAINING,
        },
        quote_via=urllib.parse.quote,
    )
    return f"{base}/#/experiments/{experiment_id}/runs?{query}"


def trial_links(
    tracking_uri: str, *, experiment_id: str, parent_run_id: str, confirmation: bool
) -> list[RunsLink]:
    """The search stage's trial runs best first, and the confirmation re-runs if any."""
    base = ui_base(tracking_uri)
    if base is None:
        return []
    stages = [("trial runs, best first", STAGE_SEARCH)]
    if confirmation:
        stages.append(("confirmation re-runs, in the search's order", STAGE_CONFIRMATION))
    links = []
    for label, stage in stages:
        search_filter = trial_filter(parent_run_id, stage=stage)
        url = runs_url(base, experiment_id, search_filter=search_filter, order_key=RANK_ORDER_KEY)
        links.append(RunsLink(label, url, search_filter, f"{RANK_ORDER_KEY} ASC"))
    return links


def link_lines(links: list[RunsLink]) -> list[str]:
    """'MLflow trial runs, best first: <url>' per link."""
    return [f"MLflow {link.label}: {link.url}" for link in links]


def note_markdown(verdict: str, links: list[RunsLink]) -> str:
    """The sweep run's description: the one-line verdict, then the links."""
    lines = [f"**Verdict:** {verdict}", ""] if verdict else []
    lines += [f"- [{link.label.capitalize()}]({link.url})" for link in links]
    return "\n".join(lines)
