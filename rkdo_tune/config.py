"""The trial configuration: one frozen dataclass, validated once at load time.

Every knob of one training run lives here, flat, so that a search space, a
`--set key=value` override, a CLI flag and an MLflow param all name the same
thing. Nothing downstream re-validates or reads raw dicts.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import sys
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rkdo_tune.errors import InvalidValue, UsageError, check_value
from rkdo_tune.metrics import EVAL_METRICS
from rkdo_tune.protocols import DEFAULT_PROTOCOL, FROM_PROTOCOL, PRESETS, PROTOCOLS
from rkdo_tune.user_files import read_text_file

OBJECTIVE_RKDO, OBJECTIVE_ICON = "rkdo", "icon"
OBJECTIVES = (OBJECTIVE_RKDO, OBJECTIVE_ICON)
DATASETS = ("digits", "synthetic", "shapes", "cifar10", "cifar100", "stl10")
MODELS = ("small_cnn", "resnet18", "resnet18_cifar")
RECURSIONS = ("in_batch", "temporal")
TAU_SCHEDULES = ("level", "linear", "cosine", "constant")
ALPHA_SCHEDULES = ("constant", "linear", "cosine", "exponential", "step", "plateau")
KERNEL_GAUSSIAN, KERNEL_STUDENT_T = "gaussian", "student_t"
KERNELS = (KERNEL_GAUSSIAN, KERNEL_STUDENT_T)
KMEANS_K = ("labels", "classes")
EVAL_FEATURES = ("embedding", "backbone")
SPLIT_TEST, SPLIT_VALIDATION = "test", "validation"
EVAL_SPLITS = (SPLIT_TEST, SPLIT_VALIDATION)
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("fp32", "bf16")


# What a field is to the matched RKDO/I-Con comparisons: a knob of one objective only,
# bookkeeping that never changes what is trained, or a setting both objectives share.
SCOPE_RKDO, SCOPE_ICON, SCOPE_BOOKKEEPING, SCOPE_SHARED = "rkdo", "icon", "bookkeeping", "shared"
SCOPES = (SCOPE_RKDO, SCOPE_ICON, SCOPE_BOOKKEEPING, SCOPE_SHARED)


def _opt(
    default: Any,
    help: str,
    choices: tuple[str, ...] | None = None,
    *,
    scope: str = SCOPE_SHARED,
) -> Any:
    return field(default=default, metadata={"help": help, "choices": choices, "scope": scope})


@dataclass(frozen=True)
class TrialConfig:
    """Everything one RKDO or I-Con training run needs. Defaults follow the reference code.

    A field whose default is FROM_PROTOCOL and that is not given takes the value of
    the `protocol`'s preset (protocols.py) for the dataset; a given value, None
    included, always wins. `dataclasses.replace` passes every field, so it keeps them.
    """

    objective: str = _opt("rkdo", "Training objective.", OBJECTIVES, scope=SCOPE_BOOKKEEPING)
    # Data
    dataset: str = _opt("digits", "Dataset; digits, synthetic and shapes are offline.", DATASETS)
    data_dir: str | None = _opt(
        None, "Directory holding (or receiving) torchvision datasets.", scope=SCOPE_BOOKKEEPING
    )
    download: bool = _opt(
        False, "Allow torchvision to download the dataset into data_dir.", scope=SCOPE_BOOKKEEPING
    )
    synthetic_size: int = _opt(32, "Image size of the generated datasets (synthetic, shapes).")
    synthetic_classes: int = _opt(
        10, "Number of classes of the generated datasets (shapes: at most 10)."
    )
    synthetic_samples: int = _opt(2000, "Number of images of the generated datasets.")
    # Model
    model: str = _opt("small_cnn", "Encoder architecture.", MODELS)
    head_hidden: int = _opt(512, "Hidden width of the projection head.")
    head_dim: int = _opt(64, "Output dimension of the projection head.")
    head_batchnorm: bool = _opt(False, "Batch norm in the head (the paper's text; not the code).")
    # Optimisation
    epochs: int = _opt(10, "Number of epochs.")
    steps_per_epoch: int | None = _opt(
        FROM_PROTOCOL, "Optimiser steps per epoch; none = a full pass."
    )
    batch_size: int = _opt(FROM_PROTOCOL, "Images per batch (each gives two views).")
    lr: float = _opt(1e-3, "Adam learning rate.")
    weight_decay: float = _opt(1e-5, "Adam weight decay.")
    # Temperature
    tau: float = _opt(0.5, "Softmax temperature tau0.")
    beta: float = _opt(0.1, "Temperature cooling: tau*(1-beta*t/T); must be < 1.")
    tau_schedule: str = _opt(
        "level", "Cooling over recursion levels (reference) or over training steps.", TAU_SCHEDULES
    )
    # RKDO
    alpha: float = _opt(
        0.5, "RKDO coupling strength (alpha0 when annealed), in (0, 1].", scope=SCOPE_RKDO
    )
    depth: int = _opt(3, "RKDO recursion depth d >= 1 (in-batch recursion).", scope=SCOPE_RKDO)
    detach_target: bool = _opt(
        False, "Stop the gradient through the RKDO target (ablation).", scope=SCOPE_RKDO
    )
    recursion: str = _opt(
        "in_batch",
        "in_batch (reference code) or temporal (paper text, EMA over steps).",
        RECURSIONS,
        scope=SCOPE_RKDO,
    )
    temporal_anchors: int = _opt(
        256, "Anchor-set size of the temporal recursion's field.", scope=SCOPE_RKDO
    )
    # Alpha annealing
    alpha_schedule: str = _opt(
        "constant", "Annealing of alpha over training.", ALPHA_SCHEDULES, scope=SCOPE_RKDO
    )
    alpha_min: float = _opt(0.05, "Floor of the alpha schedule.", scope=SCOPE_RKDO)
    alpha_decay_factor: float = _opt(
        0.5, "Multiplier of step and plateau decay, in (0, 1).", scope=SCOPE_RKDO
    )
    alpha_step_every: int = _opt(50, "Steps between step-decay drops.", scope=SCOPE_RKDO)
    alpha_patience: int = _opt(3, "Flat slope windows before a plateau decay.", scope=SCOPE_RKDO)
    # I-Con
    debias: float = _opt(0.2, "I-Con debiasing weight toward uniform, in [0, 1].", scope=SCOPE_ICON)
    kernel: str = _opt("gaussian", "I-Con similarity kernel.", KERNELS, scope=SCOPE_ICON)
    student_df: float = _opt(1.0, "Degrees of freedom of the Student-t kernel.", scope=SCOPE_ICON)
    kl_eps: float = _opt(
        FROM_PROTOCOL,
        "eps of the published code's KL, sum p*log((p+eps)/(q+eps))/B, and I-Con identity "
        "(in-batch losses; temporal RKDO keeps the exact KL); 0 = the exact KL.",
    )
    # Evaluation
    protocol: str = _opt(
        DEFAULT_PROTOCOL,
        "Preset of the fields marked [default: from --protocol]: paper (the code of the "
        "published tables), paper_latest (its rewrite) or full.",
        PROTOCOLS,
    )
    eval_batches: int | None = _opt(
        FROM_PROTOCOL,
        "Test batches scored, probes on an 80/20 split; none = probes on the train split.",
    )
    eval_batch_size: int = _opt(FROM_PROTOCOL, "Images per test batch (and encoding batch).")
    kmeans_n_init: int = _opt(FROM_PROTOCOL, "KMeans (k-means++) initialisations.")
    kmeans_k: str = _opt(
        FROM_PROTOCOL, "KMeans k: the labels among the scored images, or the classes.", KMEANS_K
    )
    eval_features: str = _opt(
        "embedding",
        "Evaluate the head's embedding (reference) or backbone features.",
        EVAL_FEATURES,
    )
    eval_split: str = _opt(
        SPLIT_TEST,
        "The split a run is scored on: test, or validation (a held-out part of the train "
        "split, trained without; a sweep's search stage when the space confirms).",
        EVAL_SPLITS,
    )
    validation_fraction: float = _opt(
        0.2, "The train split's share held out as the validation split (stratified, fixed)."
    )
    eval_every: int = _opt(1, "Evaluate every this many epochs (and always at the end).")
    eval_every_steps: int | None = _opt(
        None,
        "Also evaluate every this many optimiser steps, mid-epoch too (compute-to-target "
        "curves); none = by epochs only. Evaluation draws no training randomness.",
        scope=SCOPE_BOOKKEEPING,
    )
    knn_k: int = _opt(5, "Neighbours for kNN accuracy and neighbourhood agreement.")
    yardstick_batch: int = _opt(256, "Batch size of the common yardstick loss; keep it fixed.")
    monitor_metric: str = _opt(
        "eval/linear_acc", "Eval metric for peak, overspecialisation and steps-to-target."
    )
    target_metric_value: float | None = _opt(
        None,
        "Value of monitor_metric that counts as reached (compute-to-target).",
        scope=SCOPE_BOOKKEEPING,
    )
    # Diagnostics
    slope_window: int = _opt(10, "Steps per loss-slope window.")
    early_stop_threshold: float = _opt(0.005, "|log-loss slope| per step below which L is flat.")
    early_stop_patience: int = _opt(2, "Consecutive flat windows that make the early-stop point.")
    stop_early: bool = _opt(False, "Actually stop training at the early-stop point.")
    overspec_delta: float = _opt(0.02, "Eval drop from peak that flags overspecialisation.")
    # Runtime
    seed: int = _opt(
        42, "Random seed (the paper used 42, 123, 456, 789, 101).", scope=SCOPE_BOOKKEEPING
    )
    device: str = _opt("auto", "Training device; auto picks CUDA when present.", DEVICES)
    precision: str = _opt("fp32", "bf16 autocast on CUDA.", PRECISIONS)
    compile: bool = _opt(False, "torch.compile the model and the loss (meant for CUDA).")
    log_every: int = _opt(1, "Steps between host-side metric reads.", scope=SCOPE_BOOKKEEPING)
    # Fault injection, for testing a sweep's failure handling.
    debug_nan_at_step: int | None = _opt(None, "Debug: make the loss NaN at this step.")
    debug_raise_at_step: int | None = _opt(None, "Debug: raise an error at this step.")

    def __post_init__(self) -> None:
        check_choice("protocol", self.protocol)
        for key, value in PRESETS[self.protocol].values(self.dataset).items():
            if getattr(self, key) is FROM_PROTOCOL:  # not given: the protocol's value
                object.__setattr__(self, key, value)
        _validate(self)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


FIELDS: dict[str, dataclasses.Field] = {f.name: f for f in dataclasses.fields(TrialConfig)}
ConfigValue = str | int | float | bool | None  # the value of one TrialConfig field


def field_kind(name: str) -> type:
    """The base Python type of a config field (Optional unwrapped)."""
    hint = typing.get_type_hints(TrialConfig)[name]
    if isinstance(hint, types.UnionType):
        return next(arg for arg in typing.get_args(hint) if arg is not type(None))
    return hint


def is_optional(name: str) -> bool:
    hint = typing.get_type_hints(TrialConfig)[name]
    return isinstance(hint, types.UnionType) and type(None) in typing.get_args(hint)


def suggest_key(key: str, valid: typing.Iterable[str]) -> str:
    """A ' (did you mean X?)' suffix for a misspelt key, or ''."""
    close = difflib.get_close_matches(str(key), list(valid), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


_LARGEST_FLOAT = int(sys.float_info.max)
_EXPONENT_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def coerce_value(name: str, value: Any, *, source: str) -> Any:
    """Check (and lightly coerce: int -> float) one value against its field's type."""
    if name not in FIELDS:
        raise UsageError(f"{source}: unknown key '{name}'{suggest_key(name, FIELDS)}")
    if value is None and is_optional(name):
        return None
    kind = field_kind(name)
    if kind is float and isinstance(value, str) and _EXPONENT_FLOAT.fullmatch(value.strip()):
        return float(value)  # PyYAML (YAML 1.1) reads 1e-4 as a string; accept it as meant
    ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        if abs(value) > _LARGEST_FLOAT:  # float() would raise OverflowError
            raise UsageError(f"{source}: key '{name}' has value {value!r}, too large for a float")
        return float(value)
    if not ok:
        raise UsageError(
            f"{source}: key '{name}' must be {kind.__name__}, got {value!r} "
            f"({type(value).__name__})"
        )
    return value


def config_from_mapping(mapping: dict[str, Any], *, source: str) -> TrialConfig:
    """Build a validated TrialConfig from a dict, naming `source` in any error."""
    if not isinstance(mapping, dict):
        raise UsageError(f"{source}: expected a mapping of config keys, got {mapping!r}")
    values = {key: coerce_value(key, value, source=source) for key, value in mapping.items()}
    try:
        return TrialConfig(**values)
    except InvalidValue as exc:
        message = f"key '{exc.key}' has value {exc.value!r}, but {exc.rule}"
        raise UsageError(f"{source}: {message}") from None


def load_config_file(path: str | Path, overrides: dict[str, Any] | None = None) -> TrialConfig:
    """Read a YAML trial config; `overrides` (already typed) win over the file."""
    path = Path(path)
    data = read_yaml(path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected a mapping of config keys at the top level")
    merged = {**data, **(overrides or {})}
    return config_from_mapping(merged, source=str(path))


def read_yaml(path: Path) -> Any:
    """safe_load a user's YAML file; any unreadable or malformed input becomes one line.

    Reading refuses what is not a regular UTF-8 file of at most 1 MiB (`read_text_file`).
    Tags such as `!!int abc` raise ValueError from PyYAML's constructors, and deep
    nesting RecursionError: both are malformed input too.
    """
    text = read_text_file(path)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UsageError(f"{path}: malformed YAML{where}: {problem}") from None
    except (ValueError, TypeError, OverflowError) as exc:
        raise UsageError(f"{path}: malformed YAML: {exc}") from None
    except RecursionError:
        raise UsageError(f"{path}: malformed YAML: nested too deeply") from None


def parse_override(text: str, *, source: str = "--set") -> tuple[str, Any]:
    """Split 'key=value' and type the value with YAML rules ('0.3' -> 0.3, 'none' -> None)."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise UsageError(f"{source}: expected key=value, got {text!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    if isinstance(value, str) and value.lower() == "none":
        value = None
    return key, value


def check_choice(key: str, value: object, *, name: str | None = None) -> None:
    """Check `value` against config field `key`'s choices; an error names `name` (or key)."""
    choices = FIELDS[key].metadata["choices"]
    check_value(value in choices, name or key, value, f"it must be one of {', '.join(choices)}")


_POSITIVE_INTS = (
    "epochs",
    "head_hidden",
    "head_dim",
    "eval_every",
    "knn_k",
    "early_stop_patience",
    "alpha_step_every",
    "alpha_patience",
    "temporal_anchors",
    "log_every",
    "synthetic_size",
    "synthetic_samples",
    "eval_batch_size",
    "kmeans_n_init",
)

# The range rule of each numeric field, (test, rule). The objectives and schedules check
# their arguments with these same rules (`check_range`), so each rule is written only here.
_RANGES: dict[str, tuple[Callable[[float], bool], str]] = {
    "alpha": (lambda v: 0 < v <= 1, "it must lie in (0, 1]"),
    "depth": (lambda v: v >= 1, "it must be >= 1"),
    "tau": (lambda v: 0 < v < math.inf, "it must be > 0 and finite"),
    "beta": (lambda v: 0 <= v < 1, "it must lie in [0, 1) (beta >= 1 drives tau to 0 or below)"),
    "alpha_decay_factor": (lambda v: 0 < v < 1, "it must lie in (0, 1)"),
    "debias": (lambda v: 0 <= v <= 1, "it must lie in [0, 1]"),
    "student_df": (lambda v: v > 0, "it must be > 0"),
    "lr": (lambda v: v > 0, "it must be > 0"),
    "weight_decay": (lambda v: v >= 0, "it must be >= 0"),
    "overspec_delta": (lambda v: v >= 0, "it must be >= 0"),
    "validation_fraction": (lambda v: 0 < v <= 0.5, "it must lie in (0, 0.5]"),
    "early_stop_threshold": (lambda v: v > 0, "it must be > 0"),
    **dict.fromkeys(_POSITIVE_INTS, (lambda v: v >= 1, "it must be >= 1")),
    "synthetic_classes": (lambda v: v >= 2, "it must be >= 2"),
    "slope_window": (lambda v: v >= 2, "a slope needs >= 2 steps"),
    "batch_size": (lambda v: v >= 2, "contrastive batches need >= 2"),
    "yardstick_batch": (lambda v: v >= 2, "it must be >= 2 (a contrastive batch)"),
    "kl_eps": (lambda v: 0 <= v < math.inf, "it must be >= 0 and finite (0 = the exact KL)"),
    "steps_per_epoch": (
        lambda v: v is None or v >= 1,
        "it must be >= 1 (or none for a full pass)",
    ),
    "eval_every_steps": (lambda v: v is None or v >= 1, "it must be >= 1 (or none)"),
    "eval_batches": (
        lambda v: v is None or v >= 1,
        "it must be >= 1 (or none for probes trained on the train split)",
    ),
}


def check_range(key: str, value: float, *, name: str | None = None) -> None:
    """Check `value` against config field `key`'s range rule; an error names `name` (or key)."""
    holds, rule = _RANGES[key]
    check_value(holds(value), name or key, value, rule)


def check_alpha_min(alpha_min: float, alpha: float) -> None:
    """The floor of an annealed alpha lies in (0, alpha]: the loss needs alpha > 0."""
    rule = f"it must lie in (0, alpha={alpha!r}]"
    check_value(0 < alpha_min <= alpha, "alpha_min", alpha_min, rule)


def _validate(c: TrialConfig) -> None:
    """All range and choice rules, applied once when the config is built."""
    for key, spec in FIELDS.items():
        if spec.metadata.get("choices"):
            check_choice(key, getattr(c, key))
    metric_rule = f"it must be one of {', '.join(EVAL_METRICS)}"
    check_value(c.monitor_metric in EVAL_METRICS, "monitor_metric", c.monitor_metric, metric_rule)
    for key in _RANGES:
        check_range(key, getattr(c, key))
    if c.alpha_schedule != "constant":  # alpha_min is only read by an annealing schedule
        check_alpha_min(c.alpha_min, c.alpha)


def fields_in_scope(scope: str) -> tuple[str, ...]:
    """The TrialConfig field names whose `metadata["scope"]` is `scope`, in declaration order."""
    return tuple(name for name, f in FIELDS.items() if f.metadata["scope"] == scope)


def shared_settings_key(values: Mapping[str, object]) -> tuple[tuple[str, str], ...]:
    """The settings an RKDO and an I-Con run must share to be compared ("matched settings"):
    every field but the objectives' own knobs and bookkeeping. Under the "level" tau
    schedule beta cools tau across RKDO's recursion levels only, so it is left out too."""
    skip = {name for name, f in FIELDS.items() if f.metadata["scope"] != SCOPE_SHARED}
    if values.get("tau_schedule", "level") == "level":
        skip.add("beta")
    return tuple(
        (name, repr(values[name])) for name in FIELDS if name in values and name not in skip
    )
