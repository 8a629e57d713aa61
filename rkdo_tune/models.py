"""The model zoo: an encoder (backbone) plus the reference's projection head.

- `resnet18`: torchvision's resnet18(weights=None) with the ImageNet stem and
  `fc` replaced by identity (512 features): the reference encoder exactly.
- `resnet18_cifar`: the same with the usual small-image stem (3x3 stride-1
  conv1, no max-pool).
- `small_cnn`: four conv-bn-relu blocks and global average pooling (128
  features), fast on a couple of CPU cores for 8x8 digits, fine at 32px too.

The head is Linear(feature_dim, head_hidden), [BatchNorm1d], ReLU,
Linear(head_hidden, head_dim), and `forward` L2-normalises its output. The
reference head has no batch norm (the paper's text mentions one), so
`head_batchnorm` defaults to False.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from rkdo_tune.errors import UsageError

MODELS = ("small_cnn", "resnet18", "resnet18_cifar")
SMALL_CNN_WIDTHS = (32, 64, 128, 128)
SMALL_CNN_STRIDES = (1, 2, 2, 1)


class ContrastiveModel(nn.Module):
    """An encoder and a projection head; `forward` gives L2-normalised embeddings."""

    def __init__(self, backbone: nn.Module, head: nn.Module, feature_dim: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.feature_dim = feature_dim

    def features(self, x: Tensor) -> Tensor:
        """(B, feature_dim) encoder features, the representation that is evaluated."""
        return self.backbone(x).flatten(1)

    def forward(self, x: Tensor) -> Tensor:
        """(B, head_dim) projections of unit L2 norm."""
        return F.normalize(self.head(self.features(x)), dim=1)


def build_model(
    name: str,
    *,
    in_channels: int,
    head_hidden: int = 512,
    head_dim: int = 64,
    head_batchnorm: bool = False,
) -> ContrastiveModel:
    """A freshly initialised model `name` for `in_channels`-channel images."""
    if name not in MODELS:
        raise UsageError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    for key, value in (
        ("in_channels", in_channels),
        ("head_hidden", head_hidden),
        ("head_dim", head_dim),
    ):
        if value < 1:
            raise UsageError(f"model {key} must be a positive integer, got {value}")
    if name == "small_cnn":
        backbone, feature_dim = small_cnn(in_channels), SMALL_CNN_WIDTHS[-1]
    else:
        backbone, feature_dim = resnet18_backbone(in_channels, cifar_stem=name == "resnet18_cifar")
    head = projection_head(feature_dim, head_hidden, head_dim, batchnorm=head_batchnorm)
    return ContrastiveModel(backbone, head, feature_dim)


def projection_head(in_dim: int, hidden: int, out_dim: int, *, batchnorm: bool) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Linear(in_dim, hidden)]
    if batchnorm:
        layers.append(nn.BatchNorm1d(hidden))
    layers += [nn.ReLU(inplace=True), nn.Linear(hidden, out_dim)]
    return nn.Sequential(*layers)


def resnet18_backbone(in_channels: int, *, cifar_stem: bool) -> tuple[nn.Module, int]:
    """torchvision resnet18 without weights and with `fc` = identity (512 features)."""
    from torchvision.models import resnet18

    net = resnet18(weights=None)
    feature_dim = net.fc.in_features
    net.fc = nn.Identity()
    if cifar_stem:
        net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
        net.maxpool = nn.Identity()
    elif in_channels != 3:
        net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
    if cifar_stem or in_channels != 3:
        # torchvision's initialisation for convolutions.
        nn.init.kaiming_normal_(net.conv1.weight, mode="fan_out", nonlinearity="relu")
    return net, feature_dim


def small_cnn(in_channels: int) -> nn.Sequential:
    """Conv-bn-relu blocks (32, 64/2, 128/2, 128) and global average pooling."""
    layers: list[nn.Module] = []
    channels = in_channels
    for width, stride in zip(SMALL_CNN_WIDTHS, SMALL_CNN_STRIDES, strict=True):
        layers += [
            nn.Conv2d(channels, width, kernel_size=3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
        ]
        channels = width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    return nn.Sequential(*layers)
