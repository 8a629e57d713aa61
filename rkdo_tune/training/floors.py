"""Compute the floors and the ceiling of one run's evaluation (`rkdo_tune.floors`).

All three are scored by the run's own protocol (`EvalSettings.from_config`), on
the same evaluation subset, as a trained model would be:

- raw pixels: the probes and clustering on the flattened pixels, scaled to
  [-1, 1] at the size the model sees (no encoder, no yardstick);
- random init: `evaluate` on the model as built, untrained (initialised with
  the config's seed);
- supervised: the same encoder and head trained with labels, cross-entropy of
  a linear classifier on the L2-normalised embedding, for the run's own number
  of steps, batch size, optimiser and augmentation. Skipped (with a note) above
  `CEILING_MAX_STEPS`, where it would cost as much as a trial.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from rkdo_tune.config import TrialConfig
from rkdo_tune.data import ImageData, augment_batch, augmentation_for, normalise
from rkdo_tune.data.augment import AugmentSpec
from rkdo_tune.evaluation import EvalSettings, evaluate, feature_scores
from rkdo_tune.floors import RANDOM_INIT, RAW_PIXELS, SUPERVISED, FloorKey, References
from rkdo_tune.models import ContrastiveModel, build_model
from rkdo_tune.training.environment import worker_environment
from rkdo_tune.training.run_setup import load_data, resolve_device, seed_everything

CEILING_MAX_STEPS = 3000
LOGIT_SCALE = 10.0  # the classifier reads unit-norm embeddings: a cosine-classifier scale
PIXEL_BATCH = 1024


def floor_key(config: TrialConfig) -> FloorKey:
    """What the floors of `config` depend on."""
    return FloorKey.of(config.to_dict(), eval_seed=EvalSettings.from_config(config).seed)


def training_steps(config: TrialConfig, num_train: int) -> int:
    """The optimiser steps a run of `config` takes (the trainer's rule)."""
    per_epoch = config.steps_per_epoch or max(1, num_train // config.batch_size)
    return config.epochs * per_epoch


def raw_pixel_features(images: torch.Tensor, *, size: int) -> torch.Tensor:
    """(N, C*size*size) float32 pixels in [-1, 1] of uint8 images (N, C, H, W), on the CPU."""
    chunks = [
        normalise(images[start : start + PIXEL_BATCH].cpu(), size=size).flatten(1)
        for start in range(0, images.shape[0], PIXEL_BATCH)
    ]
    return torch.cat(chunks)


def raw_pixel_scores(
    data: ImageData, *, settings: EvalSettings, spec: AugmentSpec
) -> dict[str, float]:
    """The protocol's probe and clustering scores of the raw pixels."""
    n = settings.scored_test_size(int(data.test_labels.shape[0]))
    test_x = raw_pixel_features(data.test_images[:n], size=spec.crop_size).numpy()
    train_x = None
    if settings.eval_batches is None:
        train_x = raw_pixel_features(data.train_images, size=spec.crop_size).numpy()
    return feature_scores(train_x, test_x, data.to("cpu"), settings=settings)


def _model(config: TrialConfig, data: ImageData, device: torch.device) -> ContrastiveModel:
    seed_everything(config.seed)
    model = build_model(
        config.model,
        in_channels=data.channels,
        head_hidden=config.head_hidden,
        head_dim=config.head_dim,
        head_batchnorm=config.head_batchnorm,
    )
    return model.to(device)


def supervised_model(
    config: TrialConfig, data: ImageData, *, spec: AugmentSpec, steps: int, device: torch.device
) -> ContrastiveModel:
    """The encoder and head trained with labels for `steps` steps (one augmented view each)."""
    model = _model(config, data, device)
    classifier = nn.Linear(config.head_dim, data.num_classes).to(device)
    params = [*model.parameters(), *classifier.parameters()]
    optimizer = torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    generator = torch.Generator(device=device).manual_seed(config.seed)
    n = int(data.train_labels.shape[0])
    batch = min(config.batch_size, n)
    model.train()
    for _ in range(steps):
        idx = torch.randint(n, (batch,), generator=generator, device=device)
        views = augment_batch(data.train_images[idx], spec, generator)
        logits = LOGIT_SCALE * classifier(model(views))
        loss = F.cross_entropy(logits, data.train_labels[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return model


def compute_references(
    config: TrialConfig,
    *,
    data: ImageData | None = None,
    ceiling_max_steps: int = CEILING_MAX_STEPS,
) -> References:
    """The raw-pixel and random-init floors and (where cheap) the supervised ceiling."""
    device = resolve_device(config.device)
    data = (data if data is not None else load_data(config)).to(device)
    spec = augmentation_for(config.dataset, image_size=data.image_size, channels=data.channels)
    settings = EvalSettings.from_config(config)
    scored = {"settings": settings, "augment_spec": spec, "device": device}
    scores = {
        RAW_PIXELS: raw_pixel_scores(data, settings=settings, spec=spec),
        RANDOM_INIT: evaluate(_model(config, data, device), data, **scored),
    }
    notes = {}
    steps = training_steps(config, int(data.train_labels.shape[0]))
    if steps <= ceiling_max_steps:
        model = supervised_model(config, data, spec=spec, steps=steps, device=device)
        scores[SUPERVISED] = evaluate(model, data, **scored)
    else:
        notes[SUPERVISED] = (
            f"not computed: {steps} training steps, over the {ceiling_max_steps} a side-check "
            "may take"
        )
    test_size = settings.scored_test_size(int(data.test_labels.shape[0]))
    return References(floor_key(config), scores, notes, test_size)


def side_checks(
    config: TrialConfig, *, references: bool = True
) -> tuple[References | None, dict[str, str]]:
    """What a sweep computes once beside its trials: the floors (unless cached) and the
    environment block's worker part, on one copy of the data."""
    data = load_data(config)
    found = compute_references(config, data=data) if references else None
    return found, worker_environment(resolve_device(config.device), data)
