"""Shared plumbing of the criteria: checks, masked weights, loss gradients, pruned entries."""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from fedsparse.errors import ConfigError
from fedsparse.sparse.criteria.registry import Batches
from fedsparse.sparse.mask import Mask


def named_weights(model: nn.Module, names: list[str]) -> dict[str, Tensor]:
    """The parameters `names` of `model`; ConfigError for unknown names."""
    params = dict(model.named_parameters())
    unknown = [n for n in names if n not in params]
    if unknown:
        raise ConfigError(f"not parameters of {type(model).__name__}: {', '.join(unknown)}")
    return {n: params[n] for n in names}


def require_batches(criterion: str, batches: Batches | None) -> Batches:
    if not batches:
        raise ConfigError(f"criterion '{criterion}' needs at least one (inputs, labels) batch")
    return batches


def masked_leaves(weights: Mapping[str, Tensor], mask: Mask | None) -> dict[str, Tensor]:
    """Detached copies of `weights`, pruned entries zeroed, requiring grad."""
    out = {}
    for n, w in weights.items():
        leaf = w.detach().clone()
        if mask is not None and n in mask:
            leaf.mul_(mask[n].to(leaf.device, leaf.dtype))
        out[n] = leaf.requires_grad_(True)
    return out


def batch_loss(model: nn.Module, leaves: Mapping[str, Tensor], batch: tuple[Tensor, Tensor],
               temperature: float = 1.0) -> Tensor:
    """Mean cross-entropy of `model` on `batch` with `leaves` substituted for its weights."""
    device = next(model.parameters()).device
    x, y = batch
    logits = functional_call(model, dict(leaves), (x.to(device),))
    return F.cross_entropy(logits / temperature, y.to(device))


def loss_gradient(model: nn.Module, leaves: Mapping[str, Tensor], batches: Batches,
                  temperature: float = 1.0) -> dict[str, Tensor]:
    """dL/dw for each leaf, with L the per-batch mean cross-entropy summed over `batches`."""
    names = list(leaves)
    total = {n: torch.zeros_like(leaves[n]) for n in names}
    for batch in batches:
        grads = torch.autograd.grad(batch_loss(model, leaves, batch, temperature),
                                    [leaves[n] for n in names], allow_unused=True)
        for n, g in zip(names, grads):
            if g is not None:
                total[n] += g
    return total


def finish(scores: Mapping[str, Tensor], mask: Mask | None) -> dict[str, Tensor]:
    """Detached float32 scores, with entries outside `mask` set to -inf."""
    out = {}
    for n, s in scores.items():
        s = s.detach().to(torch.float32)
        if mask is not None and n in mask:
            s = s.masked_fill(~mask[n].to(s.device), float("-inf"))
        out[n] = s
    return out
