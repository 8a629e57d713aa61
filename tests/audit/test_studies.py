"""The audit's studies: harmonised by overrides only, sharing what the shared control needs;
and any bad audit option, generated, is one line with nothing started."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from _support import run_cli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rkdo_tune.audit import STUDIES, AuditSettings
from rkdo_tune.audit._studies import (
    AUDIT_SEEDS,
    CONTROL_STUDY,
    SHAPES_SAMPLES,
    load_studies,
    study_names,
)
from rkdo_tune.config import FIELDS, SCOPE_SHARED, shared_settings_key
from rkdo_tune.errors import UsageError
from rkdo_tune.sweep.space import load_space


def _shared(space) -> tuple:
    values = {k: v for k, v in space.base_config.to_dict().items() if k != "epochs"}
    return shared_settings_key(values)


def test_every_claim_has_a_study_and_every_study_runs_alone() -> None:
    claims = sorted({n for s in STUDIES for n in s.claims})
    assert claims == [1, 2, 3, 4, 5, 6, 7]
    for study in STUDIES:
        assert load_space(f"audit/{study.file}").name == f"audit_{study.key}"


def test_the_audit_harmonises_seeds_split_and_shared_settings() -> None:
    loaded = dict((s.key, space) for s, space in load_studies(AuditSettings(seeds=4)))
    assert {tuple(space.seeds) for space in loaded.values()} == {AUDIT_SEEDS[:4]}
    confirming = [space for space in loaded.values() if space.confirm is not None]
    assert {space.confirm.seeds for space in confirming} == {AUDIT_SEEDS[4:8]}
    assert {_shared(space) for space in loaded.values()} == {_shared(loaded[CONTROL_STUDY])}
    # The studies that lean on the shared control keep its budget too: only the
    # budgets study trains longer (it holds 10 epochs of budget points).
    control_epochs = loaded[CONTROL_STUDY].base_config.epochs
    assert loaded["depth"].base_config.epochs == loaded["adaptive"].base_config.epochs
    assert loaded["depth"].base_config.epochs == control_epochs
    assert loaded[CONTROL_STUDY].baseline_search  # the one tuned I-Con of the audit
    assert all(loaded[k].baseline is None for k in ("depth", "adaptive"))  # trained once


def test_shared_scope_fields_are_what_the_control_is_matched_on() -> None:
    shared = {name for name, f in FIELDS.items() if f.metadata["scope"] == SCOPE_SHARED}
    assert {"dataset", "model", "lr", "batch_size", "eval_split"} <= shared


def test_dataset_model_and_budget_reach_every_study() -> None:
    settings = AuditSettings(dataset="shapes", model="small_cnn", steps_per_epoch=3)
    for _, space in load_studies(settings):
        base = space.base_config
        assert (base.dataset, base.model, base.steps_per_epoch) == ("shapes", "small_cnn", 3)
        assert base.synthetic_samples == SHAPES_SAMPLES


def test_study_sweep_names_derive_from_the_audit_name() -> None:
    assert study_names("a1") == {s.key: f"a1-{s.key}" for s in STUDIES}


GENERATED = settings(
    max_examples=60,
    deadline=timedelta(seconds=10),
    suppress_health_check=[HealthCheck.too_slow],
)
texts = st.text(min_size=0, max_size=12)
set_lines = st.one_of(
    st.builds(
        lambda k, v: f"{k}={v}",
        st.sampled_from(
            ["base.lr", "base.epochs", "search.num_samples", "repeats.seeds", "base.nope", "x"]
        ),
        texts,
    ),
    texts,
)


@GENERATED
@given(
    seeds=st.integers(min_value=-10, max_value=50),
    steps=st.one_of(st.none(), st.integers(min_value=-5, max_value=10**9)),
    dataset=st.one_of(st.none(), texts, st.sampled_from(["digits", "shapes", "cifar10"])),
    sets=st.lists(set_lines, max_size=2),
)
def test_any_settings_load_or_fail_in_one_line(seeds, steps, dataset, sets) -> None:
    settings = AuditSettings(
        seeds=seeds, steps_per_epoch=steps, dataset=dataset or None, sets=tuple(sets)
    )
    try:
        loaded = load_studies(settings)
    except UsageError as exc:
        assert "\n" not in str(exc) and str(exc)
    else:
        assert len(loaded) == len(STUDIES)


@pytest.mark.slow
@pytest.mark.parametrize(
    "args, named",
    [
        (("--seeds", "2"), "--seeds"),
        (("--seeds", "9"), "--seeds"),
        (("--steps-per-epoch", "0"), "--steps-per-epoch"),
        (("--set", "base.nope=1"), "nope"),
        (("--set", "base.lr=-1"), "lr"),
        (("--dataset", "imagenet"), "imagenet"),
        (("--name", "bad name"), "--name"),
        (("--resume",), "--resume"),
        (("--gpus-per-trial", "-1"), "gpus"),
    ],
)
def test_cli_bad_options_are_one_line_and_start_nothing(tmp_path: Path, args, named) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc = run_cli(
        "audit",
        *args,
        "--tracking-uri",
        uri,
        "--storage",
        str(tmp_path / "r"),
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rkdo-tune: error:"), proc.stderr
    assert named in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no store, no results
