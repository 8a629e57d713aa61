"""Checkpoint files: atomic, weights_only-loadable, and corrupt files are survivable."""

from __future__ import annotations

import pytest
import torch

from rkdo_tune.training.checkpoint import CHECKPOINT_FILE, load_state, save_state


def test_round_trip_keeps_tensors_and_plain_values(tmp_path):
    state = {"step": 7, "model": {"w": torch.arange(4.0)}, "history": {"loss": [1.0, 0.5]}}
    save_state(state, tmp_path)
    loaded = load_state(tmp_path)
    assert loaded["step"] == 7
    assert torch.equal(loaded["model"]["w"], torch.arange(4.0))
    assert loaded["history"] == {"loss": [1.0, 0.5]}
    assert [p.name for p in tmp_path.iterdir()] == [CHECKPOINT_FILE]  # no temp files left


def test_missing_checkpoint_is_none(tmp_path):
    assert load_state(tmp_path) is None


def test_truncated_checkpoint_warns_and_returns_none(tmp_path):
    save_state({"step": 1, "w": torch.zeros(1000)}, tmp_path)
    path = tmp_path / CHECKPOINT_FILE
    path.write_bytes(path.read_bytes()[:100])
    with pytest.warns(RuntimeWarning, match="unreadable"):
        assert load_state(tmp_path) is None


def test_checkpoint_that_would_run_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"step": 1, "evil": Evil()}, tmp_path / CHECKPOINT_FILE)
    with pytest.warns(RuntimeWarning):
        assert load_state(tmp_path) is None
