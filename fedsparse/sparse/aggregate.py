"""Server-side averaging of sparse client updates (FedDST's per-coordinate rule)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from fedsparse.sparse.mask import Mask


def sparse_average(
    states: Sequence[dict[str, torch.Tensor]],
    masks: Sequence[Mask],
    weights: Sequence[float],
    masked: Sequence[str],
) -> tuple[dict[str, torch.Tensor], Mask]:
    """Average client states; masked tensors per coordinate over the clients holding it.

    A coordinate of a masked tensor is averaged only over the clients whose mask holds it,
    weighted by `weights` (sample counts), so a client that pruned it does not dilute it.
    Other tensors are plain weighted means (FedAvg). Returns the average and the union mask.
    """
    if not states:
        raise ValueError("sparse_average needs at least one client state")
    w = torch.as_tensor(weights, dtype=torch.float64)
    total = float(w.sum())
    out: dict[str, torch.Tensor] = {}
    union: dict[str, torch.Tensor] = {}
    for name, ref in states[0].items():
        if name in masked:
            num = torch.zeros_like(ref, dtype=torch.float64)
            den = torch.zeros_like(ref, dtype=torch.float64)
            for s, m, wi in zip(states, masks, w.tolist()):
                keep = m[name]
                num.add_(s[name].double().masked_fill_(~keep, 0.0), alpha=wi)
                den.add_(keep, alpha=wi)
            held = den > 0
            out[name] = num.div_(den.clamp_min_(1e-300)).masked_fill_(~held, 0.0).to(ref.dtype)
            union[name] = held
        else:
            acc = torch.zeros_like(ref, dtype=torch.float64)
            for s, wi in zip(states, w.tolist()):
                acc.add_(s[name].double(), alpha=wi)
            out[name] = acc.div_(total).to(ref.dtype)
    return out, Mask(union)
