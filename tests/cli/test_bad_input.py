"""Table-driven corpus of user mistakes: one clear line, exit 2 (1 for the environment), nothing
started and nothing written."""

from __future__ import annotations

import socket

import pytest
from _support import run_cli

GOOD_SPACE = """name: ok
description: A valid space the cases below break one key at a time.
metric: {name: eval/linear_acc, mode: max}
base: {dataset: digits, epochs: 1, steps_per_epoch: 2}
parameters:
  alpha: {type: float, low: 0.1, high: 0.9}
search: {algorithm: random, num_samples: 2}
"""


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _space(tmp_path, text: str) -> str:
    path = tmp_path / "space.yaml"
    path.write_text(text)
    return str(path)


CASES = [
    # (id, space text or None for the good one, extra args, exit code, fragments in the line)
    ("malformed-yaml", "name: x\nbase: {dataset: digits\n", [], 2, ["space.yaml", "line"]),
    (
        "unknown-key",
        GOOD_SPACE.replace("search:", "serch:"),
        [],
        2,
        ["space.yaml", "serch", "search"],
    ),
    (
        "misspelt-base-key",
        GOOD_SPACE.replace("epochs: 1", "epocs: 1"),
        [],
        2,
        ["space.yaml", "epocs", "epochs"],
    ),
    (
        "wrong-type",
        GOOD_SPACE.replace("num_samples: 2", "num_samples: two"),
        [],
        2,
        ["space.yaml", "num_samples", "two"],
    ),
    (
        "inverted-range",
        GOOD_SPACE.replace("low: 0.1, high: 0.9", "low: 0.9, high: 0.1"),
        [],
        2,
        ["space.yaml", "alpha", "0.9"],
    ),
    (
        "alpha-out-of-range",
        GOOD_SPACE.replace("high: 0.9", "high: 1.5"),
        [],
        2,
        ["space.yaml", "parameters.alpha.high", "1.5"],
    ),
    (
        "unsafe-yaml-tag",
        GOOD_SPACE + "x: !!python/object/apply:os.system ['true']\n",
        [],
        2,
        ["space.yaml"],
    ),
    ("bad-set", None, ["--set", "base.alpah=0.3"], 2, ["--set", "alpah", "alpha"]),
    ("bad-set-syntax", None, ["--set", "base.alpha"], 2, ["--set", "base.alpha"]),
    ("unknown-space", "USE:no_such_space.yaml", [], 2, ["no_such_space"]),
    ("zero-cpus", None, ["--cpus-per-trial", "0"], 2, ["cpus", "0"]),
    ("negative-gpus", None, ["--gpus-per-trial", "-0.5"], 2, ["gpus", "-0.5"]),
    (
        "missing-data-dir",
        None,
        ["--dataset", "cifar10", "--data-dir", "DATA"],
        2,
        ["cifar10", "DATA", "--download"],
    ),
    (
        "unreachable-tracking",
        None,
        ["--tracking-uri", "http://127.0.0.1:PORT"],
        1,
        ["http://127.0.0.1:PORT"],
    ),
    (
        "unreachable-address",
        None,
        ["--address", "127.0.0.1:PORT"],
        1,
        ["--address", "127.0.0.1:PORT"],
    ),
]


@pytest.mark.parametrize(
    ("space_text", "extra", "code", "fragments"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_user_mistake_is_one_line_and_starts_nothing(tmp_path, space_text, extra, code, fragments):
    port = str(_closed_port())
    data_dir = str(tmp_path / "no-data")
    if space_text is None:
        space = _space(tmp_path, GOOD_SPACE)
    elif space_text.startswith("USE:"):
        space = space_text[4:]
    else:
        space = _space(tmp_path, space_text)
    args = [a.replace("PORT", port).replace("DATA", data_dir) for a in extra]
    proc = run_cli(
        "sweep",
        "--space",
        space,
        "--name",
        "bad",
        "--storage",
        str(tmp_path / "results"),
        *args,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == code, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for fragment in fragments:
        assert fragment.replace("PORT", port).replace("DATA", data_dir) in lines[0]
    assert not (tmp_path / "results").exists()
    assert not (tmp_path / "mlflow.db").exists()
