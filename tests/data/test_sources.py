"""Datasets in memory: the offline ones for real, torchvision's through fake files."""

from __future__ import annotations

import pickle
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
import torch
import torchvision.datasets.cifar as tv_cifar
import torchvision.datasets.stl10 as tv_stl10
from sklearn.neighbors import KNeighborsClassifier

from rkdo_tune.data import DATASETS, ImageData, load_dataset
from rkdo_tune.data.sources import resize_uint8
from rkdo_tune.errors import DataNotFoundError, UsageError


def check_shapes(data: ImageData, channels: int, size: int, train: int, test: int) -> None:
    assert data.train_images.shape == (train, channels, size, size)
    assert data.test_images.shape == (test, channels, size, size)
    assert data.train_images.dtype == data.test_images.dtype == torch.uint8
    assert data.train_labels.shape == (train,) and data.test_labels.shape == (test,)
    assert data.train_labels.dtype == data.test_labels.dtype == torch.int64
    assert data.channels == channels and data.image_size == size


# --- digits -----------------------------------------------------------------------


def test_digits_native_8x8_fixed_stratified_split():
    data = load_dataset("digits")
    check_shapes(data, channels=1, size=8, train=1437, test=360)
    assert data.name == "digits" and data.num_classes == 10
    assert data.train_images.min() == 0 and data.train_images.max() == 255
    # Stratified: each class is about a fifth test.
    train_counts = torch.bincount(data.train_labels, minlength=10)
    test_counts = torch.bincount(data.test_labels, minlength=10)
    share = test_counts / (train_counts + test_counts)
    assert ((share - 0.2).abs() < 0.02).all()
    # Fixed: the same split every time, whatever the global seed.
    torch.manual_seed(1)
    np.random.seed(1)
    again = load_dataset("digits")
    assert torch.equal(again.test_images, data.test_images)
    assert torch.equal(again.train_labels, data.train_labels)


def test_digits_pixels_are_sklearn_values_scaled_to_255():
    from sklearn.datasets import load_digits

    raw = load_digits()
    data = load_dataset("digits")
    # The split keeps dataset order; the first train image is some sklearn image.
    flat = torch.from_numpy(np.rint(raw.images * 255 / 16).astype(np.uint8))
    matches = (flat == data.train_images[0, 0]).flatten(1).all(dim=1)
    assert matches.any()
    assert raw.target[matches.nonzero()[0, 0].item()] == data.train_labels[0].item()


# --- synthetic --------------------------------------------------------------------


def test_synthetic_default_shape_balance_and_determinism():
    data = load_dataset("synthetic")
    check_shapes(data, channels=3, size=32, train=1600, test=400)
    assert data.num_classes == 10
    assert torch.bincount(data.test_labels).tolist() == [40] * 10
    again = load_dataset("synthetic")
    assert torch.equal(again.train_images, data.train_images)
    assert torch.equal(again.test_labels, data.test_labels)


def test_synthetic_is_learnable_but_not_trivial_from_raw_pixels():
    data = load_dataset("synthetic")
    x_train = data.train_images.flatten(1).float().numpy()
    x_test = data.test_images.flatten(1).float().numpy()
    knn = KNeighborsClassifier(5).fit(x_train, data.train_labels.numpy())
    accuracy = knn.score(x_test, data.test_labels.numpy())
    # Chance is 0.1: class structure is there, yet raw pixels are far from enough.
    assert 0.25 < accuracy < 0.85


def test_synthetic_sizes_follow_arguments():
    data = load_dataset("synthetic", synthetic_size=16, synthetic_classes=4, synthetic_samples=400)
    check_shapes(data, channels=3, size=16, train=320, test=80)
    assert data.num_classes == 4
    assert torch.bincount(data.train_labels).tolist() == [80] * 4


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"synthetic_size": 4}, "size"),
        ({"synthetic_classes": 1}, "classes"),
        ({"synthetic_samples": 50}, "samples"),
    ],
)
def test_synthetic_rejects_bad_sizes(kwargs, words):
    with pytest.raises(UsageError, match=words):
        load_dataset("synthetic", **kwargs)


# --- ImageData ----------------------------------------------------------------------


def test_image_data_to_device_and_validation():
    data = load_dataset("digits")
    moved = data.to("cpu")
    assert torch.equal(moved.train_images, data.train_images) and moved.name == "digits"
    with pytest.raises(ValueError, match="uint8"):
        ImageData(
            "x",
            data.train_images.float(),
            data.train_labels,
            data.test_images,
            data.test_labels,
            10,
        )


def test_unknown_dataset_names_value_and_choices():
    with pytest.raises(UsageError) as info:
        load_dataset("mnist")
    message = str(info.value)
    assert "'mnist'" in message and all(name in message for name in DATASETS)


# --- torchvision datasets: missing data -------------------------------------------


@pytest.mark.parametrize("name", ["cifar10", "cifar100", "stl10"])
def test_missing_data_is_one_line_naming_dir_and_download(name, tmp_path):
    with pytest.raises(DataNotFoundError) as info:
        load_dataset(name, data_dir=str(tmp_path), download=False)
    message = str(info.value)
    assert "\n" not in message
    assert name in message and str(tmp_path) in message and "--download" in message
    assert info.value.exit_code == 2


def test_no_data_dir_asks_for_one():
    with pytest.raises(DataNotFoundError, match="--data-dir"):
        load_dataset("cifar10")


@pytest.mark.parametrize("name, module", [("cifar10", tv_cifar), ("stl10", tv_stl10)])
def test_failed_download_names_dir_and_reason(name, module, tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(module, "download_and_extract_archive", offline)
    with pytest.raises(DataNotFoundError) as info:
        load_dataset(name, data_dir=str(tmp_path), download=True)
    message = str(info.value)
    assert "\n" not in message
    assert str(tmp_path) in message and "URLError" in message and "name resolution" in message


# --- torchvision datasets: layout, through fake files ---------------------------


def accept_any_file(monkeypatch) -> None:
    """torchvision checks md5 sums of the real files; accept any file that exists."""
    exists = lambda path, md5=None: Path(path).is_file()  # noqa: E731
    monkeypatch.setattr(tv_cifar, "check_integrity", exists)
    monkeypatch.setattr(tv_stl10, "check_integrity", exists)


def write_pickle(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(obj))


def test_cifar10_loads_as_nchw_uint8(tmp_path, monkeypatch):
    accept_any_file(monkeypatch)
    rng = np.random.default_rng(0)
    folder = tmp_path / "cifar-10-batches-py"
    batches = {}
    for k, name in enumerate([*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]):
        pixels = rng.integers(0, 256, size=(4, 3072), dtype=np.uint8)
        labels = [(k + i) % 10 for i in range(4)]
        batches[name] = (pixels, labels)
        write_pickle(folder / name, {"data": pixels, "labels": labels})
    write_pickle(folder / "batches.meta", {"label_names": [str(i) for i in range(10)]})

    data = load_dataset("cifar10", data_dir=str(tmp_path))
    check_shapes(data, channels=3, size=32, train=20, test=4)
    assert data.num_classes == 10
    # CIFAR rows are channel-major 3x32x32: the loaded tensor must be exactly that.
    first_pixels, first_labels = batches["data_batch_1"]
    assert torch.equal(data.train_images[:4], torch.from_numpy(first_pixels).view(4, 3, 32, 32))
    assert data.train_labels[:4].tolist() == first_labels
    test_pixels, _ = batches["test_batch"]
    assert torch.equal(data.test_images, torch.from_numpy(test_pixels).view(4, 3, 32, 32))
    assert data.test_images.is_contiguous()


def test_cifar100_uses_fine_labels(tmp_path, monkeypatch):
    accept_any_file(monkeypatch)
    folder = tmp_path / "cifar-100-python"
    pixels = np.zeros((3, 3072), dtype=np.uint8)
    write_pickle(folder / "train", {"data": pixels, "fine_labels": [5, 99, 0]})
    write_pickle(folder / "test", {"data": pixels[:2], "fine_labels": [1, 2]})
    write_pickle(folder / "meta", {"fine_label_names": [str(i) for i in range(100)]})
    data = load_dataset("cifar100", data_dir=str(tmp_path))
    assert data.num_classes == 100
    assert data.train_labels.tolist() == [5, 99, 0] and data.test_labels.tolist() == [1, 2]


def test_stl10_loads_nchw_and_resizes_to_64(tmp_path, monkeypatch):
    accept_any_file(monkeypatch)
    folder = tmp_path / "stl10_binary"
    folder.mkdir()
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(3, 3, 96, 96), dtype=np.uint8)
    images[0] = 77  # a flat image stays flat through the resize
    # STL-10 stores each image column-major; torchvision transposes it back.
    for split in ("train", "test"):
        images.transpose(0, 1, 3, 2).tofile(folder / f"{split}_X.bin")
        np.array([1, 10, 3], dtype=np.uint8).tofile(folder / f"{split}_y.bin")
    (folder / "unlabeled_X.bin").write_bytes(b"")

    data = load_dataset("stl10", data_dir=str(tmp_path))
    check_shapes(data, channels=3, size=64, train=3, test=3)
    assert data.train_labels.tolist() == [0, 9, 2]  # 1-based on disk
    assert (data.train_images[0] == 77).all()
    assert torch.equal(data.test_images, resize_uint8(torch.from_numpy(images), 64))
    # The resize is antialiased: an image's mean brightness survives it.
    means = data.train_images.float().mean(dim=(1, 2, 3))
    torch.testing.assert_close(
        means, torch.from_numpy(images).float().mean(dim=(1, 2, 3)), atol=1.0, rtol=0
    )


def test_check_available_names_the_missing_file_without_loading(tmp_path):
    from rkdo_tune.data import check_available

    check_available("digits", data_dir=None, download=False)  # bundled: nothing to check
    check_available("cifar10", data_dir=str(tmp_path), download=True)  # will be fetched
    with pytest.raises(DataNotFoundError, match=r"cifar10 not found under .*data_batch_1"):
        check_available("cifar10", data_dir=str(tmp_path), download=False)
    with pytest.raises(DataNotFoundError, match="--data-dir"):
        check_available("stl10", data_dir=None, download=False)
