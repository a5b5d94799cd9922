"""ResNet-18 for small images: 3x3 stride-1 stem, no max-pool (the usual CIFAR variant)."""

from __future__ import annotations

from torch import nn

from fedsparse.models.registry import MODELS


@MODELS.register("resnet18")
def resnet18(num_classes: int, in_channels: int, image_size: int) -> nn.Module:
    """torchvision's ResNet-18 with `conv1` = 3x3 stride 1 and `maxpool` removed."""
    from torchvision.models import resnet18 as tv_resnet18  # see fedsparse.models.__init__
    model = tv_resnet18(weights=None, num_classes=num_classes)
    model.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
    nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
    model.maxpool = nn.Identity()
    return model
