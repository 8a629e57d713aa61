"""The report's closing Environment section: what the sweep ran on, and what wrote the report."""

from __future__ import annotations

from collections.abc import Mapping

from rkdo_tune.environment import environment_rows, missing_keys
from rkdo_tune.report._markdown import table


def environment_section(sweep: Mapping[str, str], report: Mapping[str, str]) -> list[str]:
    """## Environment: the sweep run's block (or why there is none) beside the report's own."""
    lines = ["## Environment", ""]
    if sweep:
        missing = missing_keys(sweep)
        lines += [
            "What the sweep ran on (recorded on its MLflow run, tag `rkdo.environment`):",
            "",
            table(["what", "value"], environment_rows(sweep)),
            "",
        ]
        if missing:
            lines += [f"Not recorded: {', '.join(missing)}.", ""]
    else:
        lines += [
            "The sweep run holds no environment block (a sweep written before it was recorded).",
            "",
        ]
    lines += [
        "What wrote this report:",
        "",
        table(["what", "value"], environment_rows(report)),
    ]
    return lines
