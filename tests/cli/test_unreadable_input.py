"""Input the CLI cannot read or write is one line naming the path and the reason, exit 2:
a space or config that is a FIFO, a directory, a device, not UTF-8 or too big, and results
storage that cannot be created or that pyarrow cannot open. Nothing blocks, nothing is written.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from _support import run_cli

from rkdo_tune.user_files import MAX_INPUT_BYTES


def _make(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / "input.yaml"
    if kind == "fifo":
        os.mkfifo(path)  # no writer: a plain open() for reading would block forever
    elif kind == "directory":
        path.mkdir()
    elif kind == "device":
        return Path("/dev/null")
    elif kind == "latin-1":
        path.write_bytes("name: caf\xe9\n".encode("latin-1"))
    elif kind == "too-big":
        path.write_bytes(b"#" * (MAX_INPUT_BYTES + 1))
    return path


READ_CASES = [
    ("fifo", "is a FIFO (named pipe), not a regular file"),
    ("directory", "is a directory"),
    ("device", "is a device, not a regular file"),
    ("latin-1", "not UTF-8 text (invalid byte 0xe9 at offset 9)"),
    ("too-big", f"is {MAX_INPUT_BYTES + 1} bytes, over the 1 MiB limit for an input file"),
]


def _one_line(proc, expected: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0] == f"rkdo-tune: error: {expected}", lines[0]


def _nothing_written(folder: Path) -> None:
    assert not (folder / "mlflow.db").exists()
    assert not (folder / "rkdo_results").exists()


@pytest.mark.parametrize(("kind", "reason"), READ_CASES, ids=[case[0] for case in READ_CASES])
def test_unreadable_space_file(tmp_path, kind, reason):
    path = _make(tmp_path, kind)
    proc = run_cli("sweep", "--space", str(path), cwd=tmp_path, timeout=60)
    _one_line(proc, f"{path}: {reason}")
    _nothing_written(tmp_path)


@pytest.mark.parametrize(("kind", "reason"), READ_CASES[::3], ids=["fifo", "latin-1"])
def test_unreadable_train_config(tmp_path, kind, reason):
    path = _make(tmp_path, kind)
    proc = run_cli("train", "--config", str(path), cwd=tmp_path, timeout=60)
    _one_line(proc, f"{path}: {reason}")


def test_storage_below_a_file_is_refused_before_anything_starts(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    storage = blocker / "results"
    proc = run_cli("sweep", "--space", "smoke.yaml", "--storage", str(storage), "--dry-run",
                   cwd=tmp_path, timeout=60)  # fmt: skip
    _one_line(
        proc, f"--storage {storage}: {blocker} is not a directory, so results cannot go there"
    )
    _nothing_written(tmp_path)


@pytest.mark.parametrize(
    ("storage", "expected"),
    [
        (
            "nosuchfs://bucket/results",
            "Unrecognized filesystem type in URI: nosuchfs://bucket/results",
        ),
        ("file://BLOCKER/results", "BLOCKER is not a directory, so results cannot go there"),
    ],
    ids=["unknown-scheme", "file-uri-below-a-file"],
)
def test_storage_uri_is_checked_before_ray_starts(tmp_path, storage, expected):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    storage = storage.replace("BLOCKER", str(blocker))
    proc = run_cli(
        "sweep", "--space", "smoke.yaml", "--storage", storage, cwd=tmp_path, timeout=120
    )
    _one_line(proc, f"--storage {storage}: {expected.replace('BLOCKER', str(blocker))}")
    _nothing_written(tmp_path)


def test_pending_timeout_must_be_positive(tmp_path):
    proc = run_cli("sweep", "--space", "smoke.yaml", "--pending-timeout", "0", "--dry-run",
                   cwd=tmp_path, timeout=60)  # fmt: skip
    _one_line(proc, "--pending-timeout has value 0, but it must be > 0 seconds")
