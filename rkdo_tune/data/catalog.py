"""What datasets exist and whether one is on disk, without importing torch.

The sweep driver checks a dataset before anything starts; keeping this module
free of torch keeps the driver (and every CLI command) quick to start.
"""

from __future__ import annotations

from pathlib import Path

from rkdo_tune.errors import DataNotFoundError

DATASETS = ("digits", "synthetic", "shapes", "cifar10", "cifar100", "stl10")
TORCHVISION_DATASETS = ("cifar10", "cifar100", "stl10")


def require_data_dir(name: str, data_dir: str | None) -> Path:
    if data_dir is None:
        raise DataNotFoundError(
            f"{name} needs a data directory: pass --data-dir DIR (and --download to fetch it there)"
        )
    return Path(data_dir).expanduser()


def check_available(name: str, *, data_dir: str | None, download: bool) -> None:
    """Fail in one line, without loading anything, if a torchvision dataset is not on disk.

    A cheap pre-flight for the driver: the files torchvision would read must exist.
    """
    if name not in TORCHVISION_DATASETS:
        return
    root = require_data_dir(name, data_dir)
    if download:
        return
    from torchvision import datasets

    reader = {"cifar10": datasets.CIFAR10, "cifar100": datasets.CIFAR100, "stl10": datasets.STL10}
    cls = reader[name]
    folder = root / cls.base_folder
    missing = [f for f, _ in (*cls.train_list, *cls.test_list) if not (folder / f).is_file()]
    if missing:
        raise DataNotFoundError(
            f"{name} not found under '{root}' (no {folder / missing[0]}); "
            "pass --download to fetch it, or --data-dir to point at it"
        )
