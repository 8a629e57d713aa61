"""The paper protocol's geometry on STL-10, read from fake STL-10 files on disk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torchvision.datasets.stl10 as tv_stl10

from rkdo_tune.config import config_from_mapping
from rkdo_tune.training import train

TRAIN_IMAGES, TEST_IMAGES = 96, 400  # more test images than the 352 the protocol scores


def write_fake_stl10(root: Path) -> None:
    """STL-10's binary layout (column-major 3x96x96 uint8, 1-based labels) with noise pixels."""
    folder = root / "stl10_binary"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for split, count in (("train", TRAIN_IMAGES), ("test", TEST_IMAGES)):
        labels = np.arange(count) % 10
        pixels = rng.integers(0, 256, size=(count, 3, 96, 96), dtype=np.uint8)
        pixels[np.arange(count), labels % 3] //= 2  # a darker channel: some label signal
        pixels.transpose(0, 1, 3, 2).tofile(folder / f"{split}_X.bin")
        (labels + 1).astype(np.uint8).tofile(folder / f"{split}_y.bin")
    (folder / "unlabeled_X.bin").write_bytes(b"")


@pytest.mark.slow
def test_paper_protocol_on_stl10_trains_batches_of_32_and_scores_352_images(tmp_path, monkeypatch):
    monkeypatch.setattr(tv_stl10, "check_integrity", lambda path, md5=None: Path(path).is_file())
    write_fake_stl10(tmp_path)
    mapping = {"dataset": "stl10", "data_dir": str(tmp_path), "epochs": 2, "eval_every": 2}
    config = config_from_mapping({**mapping, "protocol": "paper", "device": "cpu"}, source="test")
    assert (config.batch_size, config.eval_batches, config.eval_batch_size) == (32, 11, 32)

    result = train(config)

    assert result.steps == 22
    # 11 batches of 32 = 352 images scored: a probe split of 281/71.
    for key in ("eval/linear_acc", "eval/knn_acc"):
        value = result.metrics[key]
        assert abs(value * 71 - round(value * 71)) < 1e-9, (key, value)
    assert any(0 < result.metrics[key] < 1 for key in ("eval/linear_acc", "eval/knn_acc"))
