"""`rkdo-tune report`: a sweep's runs in MLflow turned into Markdown tables and PNG plots.

`write_reports` is the entry point; it reads through `rkdo_tune.tracking.reading`
(MLflow stays inside the tracking package), chooses the best RKDO configuration,
its I-Con control and the seeds of the verdict with `_verdict`, computes the
tables with `_stats`, `_pairs`, `_targets` and `_ratio` (compute-to-target; each Holm
family named in `_families`), draws with `_plots` and writes with `_markdown`,
`_md_verdict` and `_md_targets`,
then logs the folder to the sweep's parent run. `_build` joins these steps.
"""

from __future__ import annotations

from rkdo_tune.report._build import ReportResult, StudyReport, write_reports, write_sweep_report
from rkdo_tune.report._ratio import step_ratios
from rkdo_tune.report._targets import Target

__all__ = [
    "ReportResult",
    "StudyReport",
    "Target",
    "step_ratios",
    "write_reports",
    "write_sweep_report",
]
