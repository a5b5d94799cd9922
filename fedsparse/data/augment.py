"""Batched, vectorised image augmentation and normalisation on N x C x H x W tensors."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def random_crop_flip(
    x: torch.Tensor, generator: torch.Generator, padding: int = 4, flip: bool = True
) -> torch.Tensor:
    """Per image: zero-pad by `padding`, crop back to H x W at a random offset, and (if `flip`)
    mirror horizontally with probability 1/2. Works on uint8 or float batches; one gather, no loop.
    Random numbers come from `generator` (drawn on its device)."""
    if x.ndim != 4:
        raise ValueError(f"random_crop_flip expects an N x C x H x W batch, got shape {tuple(x.shape)}")
    n, c, h, w = x.shape
    dev = generator.device
    dy = torch.randint(0, 2 * padding + 1, (n, 1), generator=generator, device=dev).to(x.device)
    dx = torch.randint(0, 2 * padding + 1, (n, 1), generator=generator, device=dev).to(x.device)
    cols = torch.arange(w, device=x.device).expand(n, w)
    if flip:
        mirrored = torch.rand(n, 1, generator=generator, device=dev).to(x.device) < 0.5
        cols = torch.where(mirrored, cols.flip(1), cols)
    rows = dy + torch.arange(h, device=x.device)
    cols = dx + cols
    padded = F.pad(x, (padding,) * 4) if padding else x
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    chans = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[batch, chans, rows[:, None, :, None], cols[:, None, None, :]]


def normalize(x: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 images -> float32 `(x / 255 - mean) / std`, per channel (mean/std on the [0, 1] scale)."""
    if x.dtype != torch.uint8:
        raise TypeError(f"normalize expects uint8 images, got {x.dtype}")
    shape = (-1, 1, 1)
    m = torch.as_tensor(mean, dtype=torch.float32, device=x.device).view(shape)
    s = torch.as_tensor(std, dtype=torch.float32, device=x.device).view(shape)
    return (x.to(torch.float32) / 255 - m) / s
