"""Helpers shared by tests: the real `rkdo-tune` executable as a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

RKDO_TUNE = str(Path(sys.executable).with_name("rkdo-tune"))


def run_cli(
    *args: str,
    cwd: Path | None = None,
    timeout: float = 600,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    """Run the installed `rkdo-tune` console script as a real subprocess."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [RKDO_TUNE, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        check=False,
    )


def embedding_pairs(batch: int, dim: int, seed: int) -> tuple:
    """Two correlated batches of L2-normalised float64 embeddings (B, D), requiring grad."""
    import torch
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(seed)
    z1 = F.normalize(torch.randn(batch, dim, generator=g, dtype=torch.float64), dim=1)
    z2 = F.normalize(z1 + 0.7 * torch.randn(batch, dim, generator=g, dtype=torch.float64), dim=1)
    return z1.requires_grad_(), z2.requires_grad_()


def expected_p_values(
    pairs: dict[str, tuple[list[float], list[float]]], *, primary: str | None
) -> dict[str, float]:
    """The verdict's p per metric, recomputed with scipy: paired t-test p-values, the
    primary endpoint unadjusted (a family of one), the others Holm-adjusted together.
    A metric whose differences are all equal has no test (NaN), as `inference.paired` says.
    """
    import math

    import numpy as np
    from scipy import stats

    from rkdo_tune.inference import holm

    raw = {}
    for metric, (a, b) in pairs.items():
        diff = np.subtract(a, b)
        raw[metric] = math.nan if np.ptp(diff) == 0 else float(stats.ttest_rel(a, b).pvalue)
    secondary = [name for name in raw if name != primary]
    adjusted = dict(zip(secondary, holm([raw[name] for name in secondary]), strict=True))
    return {name: raw[name] if name == primary else adjusted[name] for name in raw}


def sweep_then_report(
    folder: Path, *, space: str, experiment: str, tracking_uri: str, extra: tuple[str, ...] = ()
) -> tuple[subprocess.CompletedProcess, Path]:
    """`rkdo-tune sweep` of `space` into `experiment`, then `rkdo-tune report` of it into
    `folder/report`; both must succeed. Returns the sweep's process and the report folder."""
    proc = run_cli(
        *("sweep", "--space", space, "--name", experiment, *extra),
        *("--storage", str(folder / "results"), "--tracking-uri", tracking_uri),
        *("--experiment", experiment),
        cwd=folder,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = folder / "report"
    report = run_cli(
        *("report", "--experiment", experiment, "--tracking-uri", tracking_uri),
        *("--out", str(out)),
        cwd=folder,
        timeout=300,
    )
    assert report.returncode == 0, report.stderr[-3000:]
    return proc, out
