"""The two small CNNs of FedDST (Bibikar et al., AAAI 2022), fixed to their datasets."""

from __future__ import annotations

import torch
from torch import nn

from fedsparse.models.input_check import require_input
from fedsparse.models.pooling import max_pool3
from fedsparse.models.registry import MODELS


def pool_relu(x: torch.Tensor) -> torch.Tensor:
    """ReLU(MaxPool(3, stride 1)(x)), equal to MaxPool(ReLU(x)) in value and gradient (ReLU is
    monotone; the first maximum of a window is the same before and after it). Returns a
    contiguous NCHW tensor; see `max_pool3` for how the pooling is computed fast."""
    return torch.relu(max_pool3(x))


class FedDSTNet(nn.Module):
    """conv1 -> ReLU -> MaxPool(3, 1) -> conv2 -> ReLU -> MaxPool(3, 1) -> fc layers."""

    def __init__(self, in_channels: int, convs: tuple[int, int], image_size: int,
                 hidden: tuple[int, ...], num_classes: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, convs[0], 5)
        self.conv2 = nn.Conv2d(convs[0], convs[1], 5)
        side = image_size - 4 - 2 - 4 - 2  # two 5x5 convs and two 3x3 stride-1 pools, no padding
        widths = (convs[1] * side * side, *hidden, num_classes)
        for i, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:]), start=1):
            self.add_module(f"fc{i}", nn.Linear(n_in, n_out))
        self.num_fc = len(widths) - 1

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        """ReLU and 3x3 stride-1 max-pool after each conv."""
        return pool_relu(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.conv1(x))
        x = self.pool(self.conv2(x))
        x = torch.flatten(x, 1)
        for i in range(1, self.num_fc):
            x = torch.relu(getattr(self, f"fc{i}")(x))
        return getattr(self, f"fc{self.num_fc}")(x)


@MODELS.register("cifar10_net")
def cifar10_net(num_classes: int, in_channels: int, image_size: int) -> nn.Module:
    """FedDST's CIFAR10Net: 3x32x32 input, fc1 = 6400 -> 120; 781,770 maskable weights."""
    require_input("cifar10_net", in_channels, image_size, (3, 32))
    return FedDSTNet(3, (6, 16), 32, (120, 84), num_classes)


@MODELS.register("mnist_net")
def mnist_net(num_classes: int, in_channels: int, image_size: int) -> nn.Module:
    """FedDST's MNISTNet: 1x28x28 input, fc1 = 5120 -> 50."""
    require_input("mnist_net", in_channels, image_size, (1, 28))
    return FedDSTNet(1, (10, 20), 28, (50,), num_classes)
