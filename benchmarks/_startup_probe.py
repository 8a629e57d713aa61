"""Start-up costs a sweep pays once, each timed alone in a fresh process.

What the direct side imports before it trains, what the sweep driver
imports before Ray starts, `ray.init()` (called as `connect_ray` calls it)
and `ray.shutdown()`, and what a new Ray worker imports before its first
trial.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

# Run with `python -c` so that nothing is imported before the timers start.
STARTUP_PROBE = """
import importlib, json, sys, time
def timed_imports(*modules):
    start = time.perf_counter()
    for module in modules:
        importlib.import_module(module)
    return time.perf_counter() - start
out = {}
if sys.argv[1] == "direct":  # what the direct side imports before it trains
    out["import_direct_side_s"] = timed_imports("torch", "rkdo_tune.training.trainer")
elif sys.argv[1] == "driver":  # what `rkdo-tune sweep` imports before Ray starts
    out["import_driver_s"] = timed_imports(
        "rkdo_tune.cli", "rkdo_tune.sweep.runner", "rkdo_tune.tracking._tracker"
    )
    import ray
    start = time.perf_counter()
    ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)
    out["init_s"] = time.perf_counter() - start
    start = time.perf_counter()
    ray.shutdown()
    out["shutdown_s"] = time.perf_counter() - start
else:  # what a new Ray worker imports before a trial can start
    timed_imports("ray")
    out["import_worker_s"] = timed_imports(
        "torch", "ray.tune", "mlflow", "rkdo_tune.sweep.trial", "rkdo_tune.tracking"
    )
print(json.dumps(out))
"""


def startup_probe(workdir: Path) -> dict[str, float]:
    """Fresh processes: direct and driver imports, ray.init(), shutdown; a worker's imports.

    ray.init() is called as `connect_ray` calls it.
    """
    times: dict[str, float] = {}
    for role in ("direct", "driver", "worker"):
        command = [sys.executable, "-c", STARTUP_PROBE, role]
        done = subprocess.run(command, cwd=workdir, capture_output=True, text=True, check=True)
        stdout = done.stdout
        times.update(json.loads(stdout.strip().splitlines()[-1]))
    return times
