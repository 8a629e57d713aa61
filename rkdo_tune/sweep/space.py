"""Search spaces for `rkdo-tune sweep`: load a YAML space, sample it define-by-run, build trials.

A space is validated completely when it is loaded (see `_schema`), so a
mistake is one line before Ray, Optuna or MLflow start. This module never
imports Ray or MLflow, and imports Optuna only to build a sampler.

    space = load_space("alpha_ablation", overrides=["search.num_samples=4"])
    params = sample_params(space, optuna_trial)          # inside OptunaSearch
    configs = [trial_config(space, params, seed=s) for s in space.seeds]
"""

from __future__ import annotations

import copy
import dataclasses
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import rkdo_tune
from rkdo_tune.config import (
    SPLIT_TEST,
    SPLIT_VALIDATION,
    ConfigValue,
    TrialConfig,
    config_from_mapping,
    read_yaml,
    suggest_key,
)
from rkdo_tune.errors import UsageError
from rkdo_tune.sweep._overrides import apply_overrides
from rkdo_tune.sweep._parameters import Parameter, condition_holds
from rkdo_tune.sweep._schema import (
    PAPER_SEEDS,
    ConfirmSettings,
    Objective,
    Resources,
    SchedulerSettings,
    SearchSettings,
    VerdictSettings,
    parse_space,
)
from rkdo_tune.verdict import STAGE_SEARCH

if TYPE_CHECKING:
    import optuna

__all__ = [
    "PAPER_SEEDS",
    "ConfirmSettings",
    "Objective",
    "Parameter",
    "Resources",
    "SchedulerSettings",
    "SearchSettings",
    "SearchSpace",
    "confirmation_trial_count",
    "count_trials",
    "experiment_trial_count",
    "list_spaces",
    "load_space",
    "make_sampler",
    "resolve_space_path",
    "sample_params",
    "search_trial_count",
    "trial_config",
]


@dataclass(frozen=True)
class SearchSpace:
    """A validated search space. `raw` is the YAML dict after overrides (for logging).

    `base` holds the keys the file fixes; `base_config` is what they make over
    TrialConfig's defaults, resolved once: the value of every key that a trial
    does not sample (its seed aside, which comes from `seeds`). `metric` and `mode` are
    the primary objective, `objectives[0]`; `objectives` lists every one the search
    optimises (several: a multi-objective search, with the scheduler none).
    """

    name: str
    description: str
    metric: str
    mode: str
    objectives: tuple[Objective, ...]
    base: Mapping[str, ConfigValue]
    base_config: TrialConfig
    parameters: tuple[Parameter, ...]
    search: SearchSettings
    scheduler: SchedulerSettings
    seeds: tuple[int, ...]
    resources: Resources
    baseline: Mapping[str, ConfigValue] | None  # the I-Con control arm's keys over base
    confirm: ConfirmSettings | None
    source: Path
    raw: Mapping[str, Any]  # YAML as read: any structure
    verdict: VerdictSettings = field(default_factory=VerdictSettings)  # primary endpoint, margin
    # `baseline: {tune: true}`: what I-Con's own study searches (empty: I-Con is not tuned)
    baseline_search: tuple[Parameter, ...] = ()
    budget_epochs: tuple[int, ...] = ()  # budget points inside one run (`_budgets`)

    def eval_split(self, stage: str) -> str:
        """The split a trial of `stage` is scored on: with a confirmation stage, the search
        selects on the validation split and the test split scores the chosen configurations
        once (issue 18 §3); without one, the search is scored on test as published."""
        selects = self.confirm is not None and stage == STAGE_SEARCH
        return SPLIT_VALIDATION if selects else SPLIT_TEST

    @property
    def searched_parameters(self) -> tuple[Parameter, ...]:
        """Every parameter a study of this space samples: its own, then a tuned baseline's
        (I-Con's knobs, `objective` among them) that it does not sample itself."""
        names = {p.name for p in self.parameters}
        return (*self.parameters, *(p for p in self.baseline_search if p.name not in names))

    @property
    def fixed_arm(self) -> Mapping[str, ConfigValue] | None:
        """The one trial of the search experiment that Optuna never sees (the baseline arm):
        I-Con's default; with a tuned baseline, RKDO's default (the base settings), I-Con's
        default being its own study's (`baseline_study`)."""
        if self.baseline_search:
            return {"objective": self.base_config.objective}
        return self.baseline

    def baseline_study(self) -> SearchSpace | None:
        """A tuned baseline's own study, run as this one is: I-Con's knobs under the same
        sampler, budget, scheduler, seeds and confirmation, its fixed arm I-Con's default.
        None when the baseline is not tuned."""
        if not self.baseline_search or self.baseline is None:
            return None
        return dataclasses.replace(
            self,
            base={**self.base, **self.baseline},
            base_config=TrialConfig(**{**self.base_config.to_dict(), **self.baseline}),
            parameters=self.baseline_search,
            search=dataclasses.replace(self.search, points_to_evaluate=()),
            baseline_search=(),
        )

    def with_updates(
        self,
        *,
        num_samples: int | None = None,
        max_concurrent: int | None = None,
        cpus: float | None = None,
        gpus: float | None = None,
        confirm_top: int | None = None,
        no_baseline: bool = False,
    ) -> SearchSpace:
        """This space with CLI-flag values written into `raw` and validated again."""
        updates = {
            ("search", "num_samples"): num_samples,
            ("search", "max_concurrent"): max_concurrent,
            ("resources", "cpus"): cpus,
            ("resources", "gpus"): gpus,
            ("confirm", "top"): confirm_top,
        }
        raw = copy.deepcopy(dict(self.raw))
        if no_baseline:
            raw["baseline"] = None
        for (section, key), value in updates.items():
            if value is not None:
                current = raw.get(section)
                raw[section] = {**(current if isinstance(current, dict) else {}), key: value}
        return _build(raw, self.source)


def _build(raw: object, source: Path) -> SearchSpace:
    return SearchSpace(**parse_space(raw, str(source)), source=source, raw=raw)


def load_space(path_or_name: str | Path, *, overrides: Sequence[str] = ()) -> SearchSpace:
    """Read, override (`key.path=value`, YAML-typed) and validate a space file or packaged name."""
    path = resolve_space_path(path_or_name)
    raw = read_yaml(path)
    if overrides and isinstance(raw, dict):
        raw = apply_overrides(raw, overrides)
    return _build(raw, path)


def space_directories() -> list[Path]:
    """Packaged spaces: inside the package (wheels), then the repo's top level (editable)."""
    package = Path(rkdo_tune.__file__).parent
    return [d for d in (package / "search_spaces", package.parent / "search_spaces") if d.is_dir()]


def _packaged_spaces() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for directory in space_directories():
        for path in sorted(directory.glob("*.yaml")):
            found.setdefault(path.name, path)
    return dict(sorted(found.items()))


def resolve_space_path(name_or_path: str | Path) -> Path:
    """An existing file as given, else a bare name ('smoke' or 'smoke.yaml') among the packaged."""
    path = Path(name_or_path)
    try:  # a FIFO or device exists too: `read_yaml` then says what it is
        exists, is_dir = path.exists(), path.is_dir()
    except OSError:  # no permission on the way there: `read_yaml` says so
        exists, is_dir = True, False
    except ValueError:  # a NUL byte in the name
        exists, is_dir = False, False
    if exists and (not is_dir or len(path.parts) != 1):
        return path
    if len(path.parts) != 1:
        # A packaged space in a sub-folder, such as the audit's: audit/alpha.yaml.
        inside = [d / path for d in space_directories() if not path.is_absolute()]
        found = next((p for p in inside if p.is_file()), None)
        if found is None:
            raise UsageError(f"{path}: no such search-space file")
        return found
    file_name = path.name if path.suffix in (".yaml", ".yml") else f"{path.name}.yaml"
    packaged = _packaged_spaces()
    if file_name in packaged:
        return packaged[file_name]
    if exists:  # a directory named like no packaged space
        return path
    raise UsageError(
        f"unknown search space '{name_or_path}'{suggest_key(file_name, packaged)}; "
        f"packaged spaces: {', '.join(packaged) or 'none found'}"
    )


def _first_sentence(text: object) -> str:
    text = " ".join(str(text or "").split())
    match = re.match(r"(.+?[.!?])(\s|$)", text)
    return match.group(1) if match else text


def list_spaces() -> list[tuple[str, str]]:
    """(file name, first sentence of its description) of every packaged space."""
    spaces = []
    for file_name, path in _packaged_spaces().items():
        data = read_yaml(path)
        spaces.append(
            (file_name, _first_sentence(isinstance(data, dict) and data.get("description")))
        )
    return spaces


def sample_params(space: SearchSpace, trial: optuna.trial.Trial) -> dict[str, ConfigValue]:
    """Define-by-run: suggest each parameter in order, skipping those whose `when` fails."""
    values = space.base_config.to_dict()
    params: dict[str, ConfigValue] = {}
    for p in space.parameters:
        if not condition_holds(p.when, values):
            continue
        if p.kind == "categorical":
            value = trial.suggest_categorical(p.name, list(p.choices))
        elif p.kind == "int":
            value = trial.suggest_int(p.name, p.low, p.high, step=p.step, log=p.log)
        else:
            value = trial.suggest_float(p.name, p.low, p.high, step=p.step, log=p.log)
        params[p.name] = values[p.name] = value
    return params


def trial_config(
    space: SearchSpace, params: Mapping[str, ConfigValue], *, seed: int
) -> TrialConfig:
    """The TrialConfig of one run: base, then the sampled params, then the repeat seed."""
    source = f"{space.source}: trial {dict(params)!r}"
    return config_from_mapping({**space.base, **params, "seed": seed}, source=source)


def make_sampler(space: SearchSpace) -> optuna.samplers.BaseSampler:
    """The Optuna sampler of `search.algorithm`, seeded with `search.seed`.

    cmaes and qmc sample categorical (and, for cmaes, one-dimensional) spaces
    with Optuna's independent fallback sampler, which warns. tpe is
    multivariate (grouped when a parameter has `when`) and starts from half
    the budget (at most 10) of random trials, so that small sweeps still model.
    Optuna's "experimental" warnings (qmc, TPE's group) are silenced here.
    """
    import optuna

    search = space.search
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if search.algorithm == "grid":
            from rkdo_tune.sweep._grid import AskTellGridSampler

            grid = {p.name: list(p.grid()) for p in space.parameters}
            return AskTellGridSampler(search_space=grid, seed=search.seed)
        if search.algorithm == "random":
            return optuna.samplers.RandomSampler(seed=search.seed)
        if search.algorithm == "cmaes":
            return optuna.samplers.CmaEsSampler(seed=search.seed)
        if search.algorithm == "qmc":
            return optuna.samplers.QMCSampler(seed=search.seed, scramble=True)
        return optuna.samplers.TPESampler(
            seed=search.seed,
            n_startup_trials=min(10, max(1, search.num_samples // 2)),
            multivariate=True,
            group=any(p.when for p in space.parameters),
        )


def experiment_trial_count(space: SearchSpace) -> int:
    """Tune trials of one search experiment: Optuna's samples, plus its fixed arm if any.

    For grid search, `search.num_samples` is already at most the grid size
    (a larger value is rejected at load time; an absent one defaults to it).
    """
    return space.search.num_samples + (space.fixed_arm is not None)


def search_trial_count(space: SearchSpace) -> int:
    """Tune trials of the search stage: its experiment's, and a tuned baseline's study's."""
    icon = space.baseline_study()
    return experiment_trial_count(space) + (experiment_trial_count(icon) if icon else 0)


def confirmation_trial_count(space: SearchSpace) -> int:
    """Tune trials of the confirmation stage: the top K, plus the baseline arm if any; with a
    tuned baseline, each objective's top K and both defaults (`confirm.chosen_for_confirmation`)."""
    if space.confirm is None:
        return 0
    if space.baseline_search:
        return 2 * space.confirm.top + 2
    return space.confirm.top + (space.baseline is not None)


def count_trials(space: SearchSpace) -> int:
    """Training runs of the sweep: each stage's configurations times its seeds."""
    confirm_seeds = len(space.confirm.seeds) if space.confirm is not None else 0
    return (
        search_trial_count(space) * len(space.seeds)
        + confirmation_trial_count(space) * confirm_seeds
    )
