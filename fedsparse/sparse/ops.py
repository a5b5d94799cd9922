"""Prune / grow selections on masks, and the weight re-initialisation that goes with them (the
prune/grow step built on them: fedsparse.sparse.prune_grow).

All operations return a new `Mask`; layers absent from `k` are left as they are. Ties go to the
lower flat index.
"""

from __future__ import annotations

import torch
from torch import nn

from fedsparse.errors import ConfigError
from fedsparse.sparse.mask import Mask

REGROW_INITS = ("zero", "keep")


def _pick(candidates: torch.Tensor, scores: torch.Tensor, k: int, highest: bool) -> torch.Tensor:
    """Flat indices of the k best `candidates` (flat bool) by `scores`."""
    idx = candidates.nonzero().squeeze(1)
    order = torch.sort(scores.reshape(-1)[idx].float(), descending=highest, stable=True).indices
    return idx[order[:k]]


def _update(mask: Mask, scores: dict[str, torch.Tensor], k: dict[str, int], grow: bool) -> Mask:
    out = {}
    for name, m in mask.items():
        flat = m.reshape(-1).clone()
        count = k.get(name, 0)
        if count < 0:
            raise ConfigError(f"count for '{name}' must be >= 0, got {count}")
        if count:
            candidates = ~flat if grow else flat
            flat[_pick(candidates, scores[name].to(m.device), count, highest=grow)] = grow
        out[name] = flat.reshape(m.shape)
    return Mask(out)


def prune_lowest(mask: Mask, scores: dict[str, torch.Tensor], k: dict[str, int]) -> Mask:
    """Deactivate the k[name] lowest-scoring active weights of each layer (all if fewer)."""
    return _update(mask, scores, k, grow=False)


def grow_highest(mask: Mask, scores: dict[str, torch.Tensor], k: dict[str, int]) -> Mask:
    """Activate the k[name] highest-scoring inactive weights of each layer (all if fewer)."""
    return _update(mask, scores, k, grow=True)


def grow_random(mask: Mask, k: dict[str, int], generator: torch.Generator) -> Mask:
    """Activate k[name] inactive weights of each layer uniformly at random (all if fewer): U[0, 1)
    scores drawn from `generator` on its device, layer by layer in the mask's order."""
    scores = {n: torch.rand(m.shape, generator=generator, device=generator.device)
              for n, m in mask.items()}
    return grow_highest(mask, scores, k)


@torch.no_grad()
def regrow_init(model: nn.Module, old_mask: Mask, new_mask: Mask, init: str = "zero") -> None:
    """Zero the weights pruned between `old_mask` and `new_mask`; newly grown weights are set to
    zero (`init="zero"`) or left at their current values (`init="keep"`)."""
    if init not in REGROW_INITS:
        raise ConfigError(f"unknown regrow init '{init}'; allowed: {', '.join(REGROW_INITS)}")
    params = dict(model.named_parameters())
    for name, new in new_mask.items():
        p = params[name]
        old = old_mask[name].to(p.device)
        new = new.to(p.device)
        reset = old & ~new
        if init == "zero":
            reset |= new & ~old
        p.masked_fill_(reset, 0.0)
