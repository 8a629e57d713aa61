"""Imports point down the layers: the package's import graph, read with `ast`, follows the ranks.

Every import counts: at module level, inside functions (the lazy imports that
keep start-up fast), under `TYPE_CHECKING`, and module names handed to
`_lazy.lazy_attributes`. A module may import its own package (same top-level
folder) or a unit of strictly lower rank.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import rkdo_tune

PACKAGE = "rkdo_tune"
ROOT = Path(rkdo_tune.__file__).resolve().parent

# Higher imports lower. Each top-level module and folder of rkdo_tune is named here,
# so a new one fails `test_every_unit_has_a_rank` until it is given its place.
RANKS = {
    # entry points
    "__main__": 11,  # `python -m rkdo_tune` runs the CLI
    "cli": 10,  # parses flags and delegates
    "audit": 9.5,  # runs the studies (app), reports them and decides the paper's claims
    "app": 9,  # joins sweep and tracking (launch_sweep): the only unit that sees both
    "report": 8,  # reads tracked runs (tracking.reading)
    "tracking": 7,  # MLflow; implements sweep.protocol's hooks; logs training runs and plots
    "sweep": 6,  # Ray Tune and Optuna; drives training; checks data before Ray starts
    "console": 5,  # terminal output: of a training run (a TrainCallback) and of sweeps
    "training": 4,  # the trainer: data, models, objectives, schedules, evaluation, diagnostics
    "evaluation": 3,  # probes and clustering scores: needs data (views) and objectives (yardstick)
    # pure modules: no Ray, MLflow or terminal; they import only ranks below
    "data": 2,
    "objectives": 2,
    "models": 2,
    "schedules": 2,
    "diagnostics": 2,
    "plots": 2,
    "verdict": 2,  # statistics of a study's verdict (uses inference)
    "judgement": 1.5,  # margin outcomes, the floors gate and the study's context (uses floors)
    "floors": 1.2,  # raw-pixel and random-init floors, the supervised ceiling; its key (config)
    "environment": 0,  # the environment block: git, versions, command (stdlib only)
    "config": 1,  # the frozen, validated TrialConfig
    # leaves: import nothing of rkdo_tune but each other
    "metrics": 0,
    "user_files": 0.5,  # reads a file the user names (config, spaces): text or a UsageError
    "errors": 0,
    "redaction": 0,
    "inference": 0,
    "survival": 0,  # Kaplan–Meier medians and the step ratio of compute-to-target
    "pareto": 0,  # non-domination over several objectives (the report's Pareto front)
    "efficiency": 0.5,  # the area under an evaluation curve (eval/linear_acc_auc; uses metrics)
    "protocols": 0,  # the protocol presets (config fields by name) and their version
    "_lazy": 0,
    "__init__": 0,  # the package itself: `__version__`
}

# (importing module, imported module) pairs allowed against the ranks, each with its reason.
# None today: keep it that way unless a reason here is better than restructuring.
EXCEPTIONS: dict[tuple[str, str], str] = {}

# The one module of sweep/ that tracking/ may import (the hooks and report keys).
SWEEP_PROTOCOL = f"{PACKAGE}.sweep.protocol"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    relative = Path(*name.split(".")).relative_to(PACKAGE) if name != PACKAGE else Path()
    base = ROOT / relative
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def _unit(module: str) -> str:
    """The top-level module or folder of rkdo_tune that `module` belongs to."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _absolute(node: ast.ImportFrom, importer: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    anchor = importer.split(".")
    anchor = anchor if is_package else anchor[:-1]
    anchor = anchor[: len(anchor) - (node.level - 1)]
    return ".".join([*anchor, *([node.module] if node.module else [])])


def _imports(tree: ast.AST, importer: str, is_package: bool) -> Iterator[str]:
    """Every module `tree` imports, wherever the import statement sits."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = _absolute(node, importer, is_package)
            for alias in node.names:
                submodule = f"{module}.{alias.name}"
                yield (
                    submodule if submodule.startswith(PACKAGE) and _is_module(submodule) else module
                )
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            name = node.value  # a lazily imported module, named as a string
            if name.startswith(f"{PACKAGE}.") and name.isascii() and _is_module(name):
                yield name


def _import_graph() -> dict[str, set[str]]:
    graph = {}
    for path in sorted(ROOT.rglob("*.py")):
        importer = _module_name(path)
        tree = ast.parse(path.read_text(), filename=str(path))
        graph[importer] = set(_imports(tree, importer, path.name == "__init__.py"))
    return graph


GRAPH = _import_graph()


def _internal(imported: set[str]) -> set[str]:
    return {name for name in imported if name == PACKAGE or name.startswith(f"{PACKAGE}.")}


def test_the_scanner_sees_every_kind_of_import():
    """Guards the scanner itself: top-level, in-function, TYPE_CHECKING and lazy imports."""
    assert SWEEP_PROTOCOL in GRAPH[f"{PACKAGE}.tracking._tracker"]  # module level
    assert f"{PACKAGE}.sweep.runner" in GRAPH[f"{PACKAGE}.app"]  # inside a function
    assert f"{PACKAGE}.training" in GRAPH[f"{PACKAGE}.sweep.trial"]  # under TYPE_CHECKING
    assert f"{PACKAGE}.tracking._tracker" in GRAPH[f"{PACKAGE}.tracking"]  # lazy_attributes
    assert f"{PACKAGE}.metrics" in GRAPH[f"{PACKAGE}.config"]  # `from rkdo_tune import metrics`


def test_every_unit_has_a_rank():
    units = {_unit(module) for module in GRAPH}
    assert units - RANKS.keys() == set(), "give each new module or folder a rank in RANKS"
    assert RANKS.keys() - units == set(), "RANKS names a unit that no longer exists"


def test_imports_point_down_the_layers():
    upward = []
    for importer, imported in GRAPH.items():
        for target in sorted(_internal(imported)):
            if _unit(target) == _unit(importer) or (importer, target) in EXCEPTIONS:
                continue
            if RANKS[_unit(target)] >= RANKS[_unit(importer)]:
                upward.append(f"{importer} -> {target}")
    assert upward == []


def test_sweep_and_tracking_meet_only_at_the_protocol():
    sweep_to_tracking = [
        f"{importer} -> {target}"
        for importer, imported in GRAPH.items()
        if _unit(importer) == "sweep"
        for target in _internal(imported)
        if _unit(target) == "tracking"
    ]
    tracking_to_sweep = [
        f"{importer} -> {target}"
        for importer, imported in GRAPH.items()
        if _unit(importer) == "tracking"
        for target in _internal(imported)
        if _unit(target) == "sweep" and target != SWEEP_PROTOCOL
    ]
    assert sweep_to_tracking == []
    assert tracking_to_sweep == []


def test_only_tracking_imports_mlflow():
    outside = [
        f"{importer} -> {target}"
        for importer, imported in GRAPH.items()
        if _unit(importer) != "tracking"
        for target in imported
        if target == "mlflow" or target.startswith("mlflow.")
    ]
    assert outside == []


def test_the_protocol_loads_no_ray_torch_or_mlflow():
    """tracking/ imports it on the driver and on the workers alike."""
    heavy = ("ray", "optuna", "mlflow", "torch", "torchvision", "sklearn")
    code = (
        "import sys\n"
        f"import {SWEEP_PROTOCOL}\n"
        f"print(sorted(m for m in {heavy!r} if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.strip() == "[]", done.stdout
