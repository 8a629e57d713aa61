"""The protocols a run follows, chosen by name: one frozen preset of config fields each.

- ``paper``: the code that produced the paper's published Tables 1-4 (the first cell
  of the reference notebook): 11-batch "epochs", the first 11 test batches, the eps
  form of the KL, an eps-normalised I-Con identity, one k-means++ run with k = the
  labels present in the scored images, STL-10 trained in batches of 32.
- ``paper_latest``: the notebook's later rewrite (its cells 15-17), which produced no
  published table: 10 training and 10 test batches and the exact KL.
- ``full``: whole epochs; probes trained on the train split and scored on the whole
  test split; KMeans with 10 initialisations and k = the dataset's classes.

A preset only fills the config fields a run leaves out: an explicit value always
wins, an explicit ``steps_per_epoch: null`` (a full pass) included. ``TrialConfig``
applies it; README.md tabulates it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

# 1: runs recorded before `paper` meant the published tables' code (it ran what is
# now `paper_latest`, with KMeans as `full`). A sweep of another version is not resumed.
PROTOCOL_VERSION = 2
DEFAULT_PROTOCOL = "paper"

PresetValue = int | float | str | None


class _FromProtocol:
    """The TrialConfig default of a preset field: 'not given', so the protocol's value."""

    def __repr__(self) -> str:
        return "<from protocol>"


FROM_PROTOCOL: Any = _FromProtocol()


@dataclass(frozen=True)
class PerDataset:
    """A preset value that differs on STL-10 (the reference's loaders: 64 images, 32 there)."""

    default: int
    stl10: int

    def on(self, dataset: str) -> int:
        return self.stl10 if dataset == "stl10" else self.default

    def __str__(self) -> str:
        return f"{self.default} (STL-10: {self.stl10})"


@dataclass(frozen=True)
class ProtocolPreset:
    """The config fields one protocol sets, each under its TrialConfig name."""

    steps_per_epoch: int | None  # None: a full pass over the train split
    batch_size: int | PerDataset
    kl_eps: float  # 0: the exact KL
    eval_batches: int | None  # None: probes on the train split, the whole test split scored
    eval_batch_size: int | PerDataset
    kmeans_n_init: int
    kmeans_k: str  # "labels" (present in the scored images) or "classes" (of the dataset)

    def values(self, dataset: str) -> dict[str, PresetValue]:
        """The preset's config values for `dataset`, by field name."""
        values = {}
        for spec in dataclasses.fields(self):
            value = getattr(self, spec.name)
            values[spec.name] = value.on(dataset) if isinstance(value, PerDataset) else value
        return values


REFERENCE_BATCH = PerDataset(64, stl10=32)

PRESETS: MappingProxyType[str, ProtocolPreset] = MappingProxyType(
    {
        "paper": ProtocolPreset(
            steps_per_epoch=11,  # the notebook breaks after the step of batch i = 10
            batch_size=REFERENCE_BATCH,
            kl_eps=1e-8,
            eval_batches=11,  # 704 test images (352 for STL-10)
            eval_batch_size=REFERENCE_BATCH,
            kmeans_n_init=1,  # scikit-learn's default "auto" for k-means++ (>= 1.4)
            kmeans_k="labels",
        ),
        "paper_latest": ProtocolPreset(
            steps_per_epoch=10,
            batch_size=REFERENCE_BATCH,
            kl_eps=0.0,
            eval_batches=10,  # 640 test images (320 for STL-10)
            eval_batch_size=REFERENCE_BATCH,
            kmeans_n_init=1,
            kmeans_k="labels",
        ),
        "full": ProtocolPreset(
            steps_per_epoch=None,
            batch_size=64,
            kl_eps=0.0,
            eval_batches=None,
            eval_batch_size=REFERENCE_BATCH,  # only the encoding batch here
            kmeans_n_init=10,
            kmeans_k="classes",
        ),
    }
)
PROTOCOLS = tuple(PRESETS)
PRESET_FIELDS = tuple(spec.name for spec in dataclasses.fields(ProtocolPreset))
