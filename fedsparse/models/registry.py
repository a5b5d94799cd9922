"""`MODELS`: the registry of model factories."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from fedsparse.registry import Registry

ModelFactory = Callable[[int, int, int], nn.Module]
"""`(num_classes, in_channels, image_size) -> nn.Module` returning logits (no softmax)."""

MODELS: Registry[ModelFactory] = Registry("model")
