"""Atomic checkpoint files of the full training state.

A checkpoint holds only tensors, numbers, strings, lists and dicts, so it
loads with `torch.load(weights_only=True)`: a checkpoint can never run code.
Writes go to a temporary file in the same directory and are renamed into
place, so a crash mid-write leaves the previous checkpoint intact.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch

CHECKPOINT_FILE = "trainer_state.pt"


def save_state(state: dict[str, Any], directory: str | Path) -> Path:
    """Write `state` to `directory/trainer_state.pt` atomically; return the path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / CHECKPOINT_FILE
    fd, tmp = tempfile.mkstemp(prefix=".trainer_state.", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(state, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def load_state(directory: str | Path) -> dict[str, Any] | None:
    """Load a checkpoint, or None (with a warning) if it is missing or unreadable.

    A corrupt or truncated file must not crash a sweep: the trial restarts
    from scratch instead.
    """
    path = Path(directory) / CHECKPOINT_FILE
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any unpickling/zip error means "unusable"
        warnings.warn(
            f"checkpoint {path} is unreadable ({type(exc).__name__}); starting from scratch",
            RuntimeWarning,
            stacklevel=2,
        )
        return None
    if not isinstance(state, dict) or "step" not in state:
        warnings.warn(
            f"checkpoint {path} is incomplete; starting from scratch", RuntimeWarning, stacklevel=2
        )
        return None
    return state
