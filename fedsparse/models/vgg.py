"""VGG with batch norm for small images (CIFAR variant: one Linear classifier on 512 features)."""

from __future__ import annotations

import torch
from torch import nn

from fedsparse.models.registry import MODELS

_CONFIGS: dict[str, tuple[int | str, ...]] = {
    "vgg11": (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "vgg16": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M",
              512, 512, 512, "M", 512, 512, 512, "M"),
}


class VGG(nn.Module):
    """`features` (3x3 conv -> BN -> ReLU blocks, 2x2 max-pools) -> global average -> `classifier`.

    Pools use ceil mode so 28x28 inputs reach 1x1 like 32x32 ones do.
    """

    def __init__(self, config: tuple[int | str, ...], in_channels: int, num_classes: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        for item in config:
            if item == "M":
                layers.append(nn.MaxPool2d(2, stride=2, ceil_mode=True))
            else:
                layers += [nn.Conv2d(channels, int(item), 3, padding=1),
                           nn.BatchNorm2d(int(item)), nn.ReLU(inplace=True)]
                channels = int(item)
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(channels, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


@MODELS.register("vgg11")
def vgg11(num_classes: int, in_channels: int, image_size: int) -> nn.Module:
    return VGG(_CONFIGS["vgg11"], in_channels, num_classes)


@MODELS.register("vgg16")
def vgg16(num_classes: int, in_channels: int, image_size: int) -> nn.Module:
    return VGG(_CONFIGS["vgg16"], in_channels, num_classes)
