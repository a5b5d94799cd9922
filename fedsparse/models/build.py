"""`build_model`: look up a factory and build it, optionally with a seeded initialisation."""

from __future__ import annotations

import torch
from torch import nn

from fedsparse.errors import ConfigError
from fedsparse.models.registry import MODELS


def build_model(name: str, num_classes: int, in_channels: int, image_size: int,
                seed: int | None = None) -> nn.Module:
    """Build model `name`. With `seed`, the initial weights depend only on the seed; the global
    RNG state is left as it was either way (when seeded)."""
    for setting, value in (("num_classes", num_classes), ("in_channels", in_channels),
                           ("image_size", image_size)):
        if value < 1:
            raise ConfigError(f"{setting} must be >= 1, got {value}")
    factory = MODELS.get(name)
    if seed is None:
        return factory(num_classes, in_channels, image_size)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return factory(num_classes, in_channels, image_size)
