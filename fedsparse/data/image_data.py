"""`ImageData`: a whole image-classification dataset held as uint8 tensors."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import torch

from fedsparse.errors import DataError


@dataclass(eq=False)
class ImageData:
    """Train and test images (uint8, N x C x H x W) with int64 labels indexing `classes`."""

    name: str
    classes: list[str]
    train_x: torch.Tensor = field(repr=False)
    train_y: torch.Tensor = field(repr=False)
    test_x: torch.Tensor = field(repr=False)
    test_y: torch.Tensor = field(repr=False)

    def __post_init__(self) -> None:
        for split in ("train", "test"):
            x, y = getattr(self, f"{split}_x"), getattr(self, f"{split}_y")
            if x.dtype != torch.uint8 or x.ndim != 4:
                raise DataError(
                    f"{self.name}: {split}_x must be uint8 N x C x H x W, got {x.dtype} {tuple(x.shape)}"
                )
            if y.dtype != torch.int64 or y.shape != (x.shape[0],):
                raise DataError(
                    f"{self.name}: {split}_y must be int64 of length {x.shape[0]}, "
                    f"got {y.dtype} {tuple(y.shape)}"
                )
            if len(y) and not 0 <= int(y.min()) <= int(y.max()) < len(self.classes):
                raise DataError(f"{self.name}: {split}_y holds labels outside 0..{len(self.classes) - 1}")
        if self.train_x.shape[1:] != self.test_x.shape[1:]:
            raise DataError(
                f"{self.name}: train images are {tuple(self.train_x.shape[1:])} "
                f"but test images are {tuple(self.test_x.shape[1:])}"
            )

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def in_channels(self) -> int:
        return int(self.train_x.shape[1])

    @property
    def image_size(self) -> tuple[int, int]:
        """(height, width) in pixels."""
        return int(self.train_x.shape[2]), int(self.train_x.shape[3])

    @cached_property
    def mean(self) -> tuple[float, ...]:
        """Per-channel mean of the train images, on the [0, 1] scale."""
        return self._moments[0]

    @cached_property
    def std(self) -> tuple[float, ...]:
        """Per-channel standard deviation of the train images, on the [0, 1] scale."""
        return self._moments[1]

    @cached_property
    def _moments(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        # exact, from per-channel histograms of the uint8 values (no float copy of the images)
        channels = range(self.in_channels)
        hist = torch.stack([torch.bincount(self.train_x[:, c].reshape(-1), minlength=256) for c in channels])
        hist = hist.to(torch.float64)
        values = torch.arange(256, dtype=torch.float64)
        count = hist.sum(dim=1)
        mean = hist @ values / count
        std = (hist @ values.square() / count - mean.square()).clamp_min(0).sqrt()
        return tuple((mean / 255).tolist()), tuple((std / 255).tolist())
