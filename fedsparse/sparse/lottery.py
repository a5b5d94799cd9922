"""Iterative magnitude pruning with rewind (lottery tickets), with per-weight survival counts."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from fedsparse.errors import ConfigError
from fedsparse.sparse.budgets import layer_budget
from fedsparse.sparse.mask import Mask
from fedsparse.sparse.ops import prune_lowest
from fedsparse.sparse.select import SCOPES, select_mask


def iterative_magnitude_pruning(
    model: nn.Module,
    names: list[str],
    train_fn: Callable[[nn.Module, Mask], None],
    final_density: float,
    iterations: int,
    scope: str = "global",
    budget: str = "uniform",
    rewind_state: dict[str, torch.Tensor] | None = None,
) -> tuple[Mask, dict[str, torch.Tensor]]:
    """Train, prune by magnitude, rewind; `iterations` times, density decaying geometrically
    (final_density ** (i / iterations) after round i) to `final_density`.

    `train_fn(model, mask)` trains in place and must keep pruned weights at zero (e.g. with a
    `MaskedOptimizer`). Pruning only removes active weights: scope "global" ranks all layers
    together, scope "layer" follows `budget`. After each round the whole model is reset to
    `rewind_state` (default: its state at the call) and masked, so on return `model` holds the
    ticket. `survival[name]` counts the rounds each weight survived (0..iterations, long); the
    final mask is exactly `survival == iterations`.
    """
    if not 0.0 < final_density <= 1.0:
        raise ConfigError(f"final_density must be in (0, 1], got {final_density}")
    if iterations < 1:
        raise ConfigError(f"iterations must be >= 1, got {iterations}")
    if scope not in SCOPES:
        raise ConfigError(f"unknown scope '{scope}'; allowed: {', '.join(SCOPES)}")
    if rewind_state is None:
        rewind_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    params = dict(model.named_parameters())
    mask = Mask.ones(model, names)
    survival = {n: torch.zeros(params[n].shape, dtype=torch.long) for n in names}
    shapes = {n: params[n].shape for n in names}
    for i in range(1, iterations + 1):
        train_fn(model, mask)
        density = final_density ** (i / iterations)
        magnitude = {
            n: torch.where(mask[n], params[n].detach().abs(), float("-inf")) for n in names
        }
        if scope == "global":
            mask = select_mask(magnitude, density, scope="global")
        else:
            kept = layer_budget(budget, shapes, density)
            excess = {n: max(int(mask[n].sum()) - kept[n], 0) for n in names}
            mask = prune_lowest(mask, magnitude, excess)
        for n in names:
            survival[n] += mask[n].cpu().long()
        model.load_state_dict(rewind_state)
        mask.apply(model)
    return mask, survival
