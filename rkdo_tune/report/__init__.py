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

from rkdo_tune.report._build import ReportResult, write_reports, write_sweep_report

__all__ = ["ReportResult", "write_reports", "write_sweep_report"]
