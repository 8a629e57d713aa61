"""`rkdo-tune audit`: every claim of the RKDO paper tested in one command.

The audit runs the studies under `search_spaces/audit/` as sweeps nested under one
MLflow run (`run_audit`), reports each with `rkdo_tune.report`, and decides each
claim from the reports (`_evidence`, `_sensitivity`, `_stopping` pick the values;
`_builders` tests them; `_claims` adjusts every test with Holm, per study and over
the whole audit, and applies each claim's rule); `_markdown` writes audit.md.
`dry_run` prints the plan with a calibrated time estimate (`_plan`). The option
types load without torch, Ray or MLflow; the rest on first use.
"""

from __future__ import annotations

from rkdo_tune._lazy import lazy_attributes
from rkdo_tune.audit._options import (
    DEFAULT_EXPERIMENT,
    DEFAULT_SEEDS,
    AuditOptions,
    AuditSettings,
)

_LAZY = {
    "AuditResult": "rkdo_tune.audit._run",
    "dry_run": "rkdo_tune.audit._run",
    "run_audit": "rkdo_tune.audit._run",
    "STUDIES": "rkdo_tune.audit._studies",
}

__all__ = [
    "DEFAULT_EXPERIMENT",
    "DEFAULT_SEEDS",
    "AuditOptions",
    "AuditSettings",
    *_LAZY,
]

__getattr__ = lazy_attributes(__name__, _LAZY)
