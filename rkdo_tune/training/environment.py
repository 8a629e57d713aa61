"""The environment block's worker part: device, torch's determinism settings, data hash."""

from __future__ import annotations

import hashlib
import platform

import torch

from rkdo_tune import environment as env
from rkdo_tune.data import ImageData


def data_sha256(data: ImageData) -> str:
    """sha256 of the images and labels of both splits, as the trials see them (CPU bytes)."""
    digest = hashlib.sha256()
    for tensor in (data.train_images, data.train_labels, data.test_images, data.test_labels):
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def worker_environment(device: torch.device, data: ImageData) -> dict[str, str]:
    """What only the machine that trains can say: its device and torch settings, the data."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        capability = ".".join(map(str, torch.cuda.get_device_capability(device)))
    else:
        name, capability = f"cpu ({platform.machine()})", "n/a"
    cudnn = torch.backends.cudnn
    return {
        env.DEVICE: name,
        env.CAPABILITY: capability,
        env.DETERMINISTIC: str(torch.are_deterministic_algorithms_enabled()),
        env.CUDNN: f"{cudnn.deterministic} / {cudnn.benchmark}",
        env.THREADS: str(torch.get_num_threads()),
        env.DATA_SHA: data_sha256(data),
    }
