"""The evidence a sweep records on its MLflow run beside the verdict: written once, read back.

Metrics `floor/<kind>/<metric>` and `floor/test_size`, the tag `rkdo.floor_key`
(what they were computed for) and `rkdo.floor_notes` (why a kind is absent, and
the sweep's note about them). A resumed sweep reuses them when the key matches;
`rkdo-tune report` reads them to gate its verdict. The environment block is the
JSON tag `rkdo.environment`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass

from mlflow.entities import Run

from rkdo_tune import environment as env
from rkdo_tune.floors import FloorKey, References
from rkdo_tune.tracking import layout as lay
from rkdo_tune.tracking._client import MlflowClient, log_metrics, make_metric, set_tags

NOTE_KEY = "sweep"  # the sweep's own note among the kinds' notes
MAX_TAG_CHARS = 7900  # MLflow keeps at most 8000 characters of a tag


def record_references(
    client: MlflowClient, run_id: str, references: References | None, *, note: str = ""
) -> None:
    """Log the floors on the sweep run (or only the note when there are none)."""
    notes = dict(references.notes) if references is not None else {}
    if note:
        notes[NOTE_KEY] = note
    tags = {lay.TAG_FLOOR_NOTES: json.dumps(notes)} if notes else {}
    if references is not None:
        tags[lay.TAG_FLOOR_KEY] = references.key.tag()
        values = references.to_metrics(lay.FLOOR_METRIC_PREFIX)
        values[lay.METRIC_FLOOR_TEST_SIZE] = float(references.test_size)
        log_metrics(client, run_id, [make_metric(k, v, 0) for k, v in values.items()])
    if tags:
        set_tags(client, run_id, tags)


def record_environment(client: MlflowClient, run_id: str, block: Mapping[str, str]) -> None:
    """The environment block as one JSON tag (the command line shortened if it must be)."""
    block = dict(block)
    text = json.dumps(block, sort_keys=True)
    if len(text) > MAX_TAG_CHARS and env.COMMAND in block:
        cut = len(text) - MAX_TAG_CHARS + 3
        block[env.COMMAND] = block[env.COMMAND][: max(0, len(block[env.COMMAND]) - cut)] + "..."
        text = json.dumps(block, sort_keys=True)
    set_tags(client, run_id, {lay.TAG_ENVIRONMENT: text[:MAX_TAG_CHARS]})


def read_environment(run: Run) -> dict[str, str]:
    """The environment block a sweep run holds ({} when none, or unreadable)."""
    try:
        block = json.loads(run.data.tags.get(lay.TAG_ENVIRONMENT, "{}"))
    except json.JSONDecodeError:
        return {}
    return {str(k): str(v) for k, v in block.items()} if isinstance(block, dict) else {}


def read_references(run: Run) -> tuple[References | None, str]:
    """The floors a sweep run holds, and the sweep's note about them ('' when none)."""
    tags, metrics = run.data.tags, run.data.metrics
    try:
        notes = json.loads(tags.get(lay.TAG_FLOOR_NOTES, "{}"))
    except json.JSONDecodeError:
        notes = {}
    notes = {str(k): str(v) for k, v in notes.items()} if isinstance(notes, dict) else {}
    note = notes.pop(NOTE_KEY, "")
    key = FloorKey.from_tag(tags.get(lay.TAG_FLOOR_KEY, ""))
    if key is None:
        return None, note
    test_size = int(metrics.get(lay.METRIC_FLOOR_TEST_SIZE, 0))
    refs = References.from_metrics(
        key, metrics, prefix=lay.FLOOR_METRIC_PREFIX, notes=notes, test_size=test_size
    )
    return refs, note


@dataclass(frozen=True)
class RecordedEvidence:
    """What a sweep run recorded for its verdict: floors, their note, the primary endpoint."""

    references: References | None
    note: str
    primary: str | None
    margin: float
    environment: Mapping[str, str]


def read_evidence(run: Run) -> RecordedEvidence:
    """The floors, the note and the primary endpoint with its margin (NaN when not recorded)."""
    references, note = read_references(run)
    tags = run.data.tags
    try:
        margin = float(tags.get(lay.TAG_MARGIN, "nan"))
    except ValueError:
        margin = math.nan
    primary = tags.get(lay.TAG_PRIMARY_METRIC) or None
    return RecordedEvidence(references, note, primary, margin, read_environment(run))
