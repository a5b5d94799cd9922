"""Fully connected network on flattened images (784-300-100-10 on MNIST)."""

from __future__ import annotations

import torch
from torch import nn

from fedsparse.models.registry import MODELS


class MLP(nn.Module):
    """fc1 -> ReLU -> ... -> fcN. fc1's input columns are the flattened pixels (channel-major)."""

    def __init__(self, in_features: int, hidden: tuple[int, ...], num_classes: int) -> None:
        super().__init__()
        widths = (in_features, *hidden, num_classes)
        for i, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:]), start=1):
            self.add_module(f"fc{i}", nn.Linear(n_in, n_out))
        self.num_fc = len(widths) - 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(x, 1)
        for i in range(1, self.num_fc):
            x = torch.relu(getattr(self, f"fc{i}")(x))
        return getattr(self, f"fc{self.num_fc}")(x)


@MODELS.register("mlp")
def mlp(num_classes: int, in_channels: int, image_size: int) -> nn.Module:
    """784-300-100-10 on MNIST; the input width follows `in_channels * image_size**2`."""
    return MLP(in_channels * image_size * image_size, (300, 100), num_classes)
