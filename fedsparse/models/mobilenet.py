"""MobileNetV2 for small images: stride-1 stem and a stride-1 second stage (total stride 8)."""

from __future__ import annotations

from torch import nn

from fedsparse.models.registry import MODELS

# (expansion t, channels c, repeats n, first stride s); torchvision's ImageNet setting with the
# second stage's stride 2 -> 1, so 32x32 inputs end at 4x4 instead of 1x1.
_SMALL_IMAGE_SETTING = [
    [1, 16, 1, 1],
    [6, 24, 2, 1],
    [6, 32, 3, 2],
    [6, 64, 4, 2],
    [6, 96, 3, 1],
    [6, 160, 3, 2],
    [6, 320, 1, 1],
]


@MODELS.register("mobilenet_v2")
def mobilenet_v2(num_classes: int, in_channels: int, image_size: int) -> nn.Module:
    """torchvision's MobileNetV2 (width 1.0) with a 3x3 stride-1 stem reading `in_channels`."""
    from torchvision.models import mobilenet_v2 as tv_mobilenet_v2  # see fedsparse.models.__init__
    model = tv_mobilenet_v2(weights=None, num_classes=num_classes,
                            inverted_residual_setting=_SMALL_IMAGE_SETTING)
    stem = model.features[0][0]
    model.features[0][0] = nn.Conv2d(in_channels, stem.out_channels, 3, stride=1, padding=1,
                                     bias=False)
    nn.init.kaiming_normal_(model.features[0][0].weight, mode="fan_out")
    return model
