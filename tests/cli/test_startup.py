"""The CLI and the sweep driver start without torch: only trials (and `train`) load it."""

from __future__ import annotations

import subprocess
import sys

DRIVER_MODULES = (
    "rkdo_tune.cli",
    "rkdo_tune.app",
    "rkdo_tune.sweep.runner",
    "rkdo_tune.sweep.progress",
    "rkdo_tune.tracking._tracker",
)
HEAVY = ("torch", "torchvision", "sklearn")


def test_cli_and_sweep_driver_import_no_torch_or_sklearn():
    code = (
        "import sys\n"
        f"for name in {DRIVER_MODULES!r}:\n"
        "    __import__(name)\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.strip() == "[]", done.stdout
