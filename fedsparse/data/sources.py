"""Registry of known datasets and how torchvision fetches each when no local copy exists."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from fedsparse.data.image_data import ImageData
from fedsparse.registry import Registry


@dataclass(frozen=True)
class DatasetSource:
    """A dataset name, the `torchvision.datasets` class that can download it, and the shape of what
    it loads (checks that need only the model's layer shapes run from these, before any loading)."""

    name: str
    torchvision_class: str
    num_classes: int
    image_shape: tuple[int, int, int]
    """channels, height, width"""

    def fetch(self, root: Path, download: bool) -> ImageData:
        """Load (and if `download`, first download) the dataset with torchvision under `root`.

        Raises whatever torchvision raises (RuntimeError, OSError, ...) when it is absent or
        cannot be downloaded; the caller turns that into a DataError.
        """
        import torchvision.datasets

        cls = getattr(torchvision.datasets, self.torchvision_class)
        train = cls(str(root), train=True, download=download)
        test = cls(str(root), train=False, download=download)
        return ImageData(
            name=self.name,
            classes=list(train.classes),
            train_x=_images_nchw(train.data),
            train_y=torch.as_tensor(np.asarray(train.targets), dtype=torch.int64),
            test_x=_images_nchw(test.data),
            test_y=torch.as_tensor(np.asarray(test.targets), dtype=torch.int64),
        )


def _images_nchw(data: np.ndarray | torch.Tensor) -> torch.Tensor:
    """torchvision keeps MNIST-like data as N x H x W and CIFAR as N x H x W x C."""
    x = torch.as_tensor(np.asarray(data), dtype=torch.uint8)
    return x.unsqueeze(1).contiguous() if x.ndim == 3 else x.permute(0, 3, 1, 2).contiguous()


DATASETS: Registry[DatasetSource] = Registry("dataset")
for _name, _cls, _classes, _shape in [
    ("cifar10", "CIFAR10", 10, (3, 32, 32)),
    ("cifar100", "CIFAR100", 100, (3, 32, 32)),
    ("mnist", "MNIST", 10, (1, 28, 28)),
    ("fashion_mnist", "FashionMNIST", 10, (1, 28, 28)),
]:
    DATASETS.register(_name)(DatasetSource(_name, _cls, _classes, _shape))
