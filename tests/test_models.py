"""The model zoo: shapes, normalisation, and the reference encoder's exact structure."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torchvision.models import resnet18

from rkdo_tune.errors import UsageError
from rkdo_tune.models import MODELS, ContrastiveModel, build_model


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize(
    "name, channels, size",
    [
        ("small_cnn", 1, 8),
        ("small_cnn", 3, 32),
        ("resnet18", 3, 32),
        ("resnet18", 1, 8),
        ("resnet18", 3, 64),
        ("resnet18_cifar", 3, 32),
        ("resnet18_cifar", 1, 8),
    ],
)
def test_shapes_and_unit_norm(name, channels, size):
    torch.manual_seed(0)
    model = build_model(name, in_channels=channels, head_hidden=32, head_dim=16)
    assert isinstance(model, ContrastiveModel)
    x = torch.randn(2, channels, size, size)
    z = model(x)
    assert z.shape == (2, 16)
    torch.testing.assert_close(z.norm(dim=1), torch.ones(2))
    assert model.features(x).shape == (2, model.feature_dim)
    z.sum().backward()  # gradients reach the first layer
    assert next(model.backbone.parameters()).grad is not None


def test_feature_dims():
    assert build_model("small_cnn", in_channels=1).feature_dim == 128
    assert build_model("resnet18", in_channels=3).feature_dim == 512
    assert build_model("resnet18_cifar", in_channels=3).feature_dim == 512


def test_resnet18_is_torchvision_resnet18_without_fc():
    reference = resnet18(weights=None)
    backbone = build_model("resnet18", in_channels=3).backbone
    expected = {k: v.shape for k, v in reference.state_dict().items() if not k.startswith("fc.")}
    assert {k: v.shape for k, v in backbone.state_dict().items()} == expected
    assert n_params(backbone) == n_params(reference) - n_params(reference.fc)
    assert isinstance(backbone.fc, nn.Identity)
    assert isinstance(backbone.maxpool, nn.MaxPool2d)
    assert backbone.conv1.stride == (2, 2) and backbone.conv1.kernel_size == (7, 7)


def test_resnet18_other_channel_counts_replace_only_conv1():
    backbone = build_model("resnet18", in_channels=1).backbone
    assert backbone.conv1.weight.shape == (64, 1, 7, 7)
    assert backbone.conv1.stride == (2, 2) and backbone.conv1.padding == (3, 3)
    assert backbone.conv1.bias is None


def test_resnet18_cifar_stem():
    backbone = build_model("resnet18_cifar", in_channels=3).backbone
    assert backbone.conv1.weight.shape == (64, 3, 3, 3)
    assert backbone.conv1.stride == (1, 1) and backbone.conv1.padding == (1, 1)
    assert isinstance(backbone.maxpool, nn.Identity)
    # 32px keeps 4x4 before the pool instead of 1x1: only the stem differs.
    reference = resnet18(weights=None)
    assert n_params(backbone) == n_params(reference) - n_params(reference.fc) - 64 * 3 * (49 - 9)


def test_head_is_the_reference_head_by_default():
    head = build_model("resnet18", in_channels=3).head
    kinds = [type(layer) for layer in head]
    assert kinds == [nn.Linear, nn.ReLU, nn.Linear]
    assert (head[0].in_features, head[0].out_features) == (512, 512)
    assert (head[2].in_features, head[2].out_features) == (512, 64)


def test_head_batchnorm_option():
    model = build_model("small_cnn", in_channels=3, head_hidden=48, head_dim=8, head_batchnorm=True)
    kinds = [type(layer) for layer in model.head]
    assert kinds == [nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear]
    assert model.head[1].num_features == 48
    assert model(torch.randn(4, 3, 8, 8)).shape == (4, 8)


def test_unknown_model_names_value_and_choices():
    with pytest.raises(UsageError) as info:
        build_model("vit", in_channels=3)
    message = str(info.value)
    assert "'vit'" in message and all(name in message for name in MODELS)


@pytest.mark.parametrize("key", ["in_channels", "head_hidden", "head_dim"])
def test_rejects_non_positive_sizes(key):
    kwargs = {"in_channels": 3, key: 0}
    with pytest.raises(UsageError, match=key):
        build_model("small_cnn", **kwargs)
