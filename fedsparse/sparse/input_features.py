"""Induced feature selection (arXiv 2303.10999) as a mask on the first layer's inputs.

An input feature of the first Conv/Linear layer is one Linear column (an input pixel for an MLP
on flattened images) or one conv input-channel slice. Removing input j = masking every weight
that reads it; with those weights held at exactly zero (`MaskedOptimizer`), the network's output
does not depend on input j at all, which is the same as every client dropping that feature from
its data. `select.input_feature_selection` ranks the inputs; this module turns the kept index
into a mask and counts what survives.
"""

from __future__ import annotations

import torch

from fedsparse.errors import ConfigError


def input_keep_mask(shape: torch.Size, kept_index: torch.Tensor) -> torch.Tensor:
    """Bool tensor of `shape` (out, in, ...): True on the input slices (dim 1) in `kept_index`."""
    if len(shape) < 2:
        raise ConfigError(f"input selection needs a >= 2-D first-layer weight, got {tuple(shape)}")
    cols = torch.zeros(shape[1], dtype=torch.bool)
    cols[kept_index.long().cpu()] = True
    view = [1, shape[1]] + [1] * (len(shape) - 2)
    return cols.reshape(view).expand(shape).clone()


def kept_inputs(mask: torch.Tensor) -> int:
    """Number of input slices (dim 1) of a first-layer mask that hold at least one kept weight."""
    if mask.dim() < 2:
        raise ConfigError(f"a first-layer mask must be >= 2-D, got {tuple(mask.shape)}")
    return int(mask.transpose(0, 1).reshape(mask.shape[1], -1).any(dim=1).sum())


def importance_shape(n_inputs: int, in_channels: int, image_size: tuple[int, int]
                     ) -> tuple[int, ...] | None:
    """The image shape of the first layer's inputs: (H, W) or (C, H, W) when they are flattened
    pixels, (C,) when they are channels, else None."""
    h, w = image_size
    if n_inputs == in_channels * h * w:
        return (h, w) if in_channels == 1 else (in_channels, h, w)
    if n_inputs == in_channels:
        return (in_channels,)
    return None


def cover_inputs(mask: torch.Tensor, scores: torch.Tensor, kept_index: torch.Tensor) -> torch.Tensor:
    """Make every kept input read by at least one kept weight, keeping the kept count: a kept
    input slice with no kept weight gets its best-scoring weight, in exchange for the
    lowest-scoring kept weight among slices that hold more than one. (A layer budget spread thin
    over many inputs can otherwise leave an input selected but unread.)"""
    n_in = mask.shape[1]
    m = mask.transpose(0, 1).reshape(n_in, -1).clone()
    s = scores.detach().float().transpose(0, 1).reshape(n_in, -1).to(m.device)
    count = m.sum(dim=1)
    for j in kept_index.long().tolist():
        if count[j] > 0:
            continue
        donors = m & (count > 1).unsqueeze(1)
        if not donors.any():
            break
        flat = torch.where(donors, s, torch.full_like(s, float("inf"))).reshape(-1)
        give = int(torch.argmin(flat))
        gi, gk = divmod(give, m.shape[1])
        m[gi, gk] = False
        count[gi] -= 1
        m[j, int(torch.argmax(s[j]))] = True
        count[j] += 1
    moved = m.reshape(n_in, mask.shape[0], *mask.shape[2:]).transpose(0, 1)
    return moved.reshape(mask.shape).contiguous()
