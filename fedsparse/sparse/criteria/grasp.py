"""`grasp`: gradient signal preservation (Wang, Zhang & Grosse, ICLR 2020).

Sign convention. The paper scores S(-w) = -w * (H g), g = dL/dw, H the Hessian of L, and REMOVES
the weights with the HIGHEST S (removing them reduces gradient flow the least, or increases it).
Here higher = keep, so the returned score is -S = w * (H g): keeping the top of it is GraSP's rule.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from fedsparse.plugin_options import option
from fedsparse.sparse.criteria.gradients import (batch_loss, finish, loss_gradient, masked_leaves,
                                                 named_weights, require_batches)
from fedsparse.sparse.criteria.registry import CRITERIA, Batches
from fedsparse.sparse.criteria.side_effects import no_side_effects
from fedsparse.sparse.mask import Mask


def hessian_gradient(model: nn.Module, leaves: dict[str, Tensor], batches: Batches,
                     temperature: float = 1.0) -> dict[str, Tensor]:
    """H g by double backprop, with L = sum over batches of the mean cross-entropy, g = dL/dw
    (both over the leaves only)."""
    names = list(leaves)
    g = loss_gradient(model, leaves, batches, temperature)
    hg = {n: torch.zeros_like(leaves[n]) for n in names}
    for batch in batches:
        grads = torch.autograd.grad(batch_loss(model, leaves, batch, temperature),
                                    [leaves[n] for n in names], create_graph=True,
                                    allow_unused=True)
        dot = sum((gb * g[n]).sum() for n, gb in zip(names, grads) if gb is not None)
        if not isinstance(dot, Tensor) or not dot.requires_grad:
            continue  # the loss is linear in these weights: H g = 0
        for n, h in zip(names, torch.autograd.grad(dot, [leaves[n] for n in names],
                                                   allow_unused=True)):
            if h is not None:
                hg[n] += h
    return hg


@dataclass(frozen=True)
class GraspOptions:
    """Options of `grasp` (config `criterion_options`)."""

    temperature: float = option(200.0, "divides the logits inside the loss, as the GraSP and "
                                "Synaptic-Flow reference code do (T = 200)", lo=0, lo_open=True)


@CRITERIA.register("grasp", options=GraspOptions)
def grasp_scores(model: nn.Module, names: list[str], batches: Batches | None,
                 mask: Mask | None = None, generator: torch.Generator | None = None,
                 temperature: float = 200.0) -> dict[str, Tensor]:
    """w * (H g) at the given (masked) weights; higher = keep (see the module docstring).

    `temperature` divides the logits inside the loss: 200, as in the reference code of GraSP
    (alecwangcq/GraSP, pruner/GraSP.py: T=200) and Synaptic-Flow (Pruners/pruners.py, class
    GraSP: self.temp = 200); T = 1 selects other masks.
    """
    batches = require_batches("grasp", batches)
    with no_side_effects(model, batchnorm_train=True):
        leaves = masked_leaves(named_weights(model, names), mask)
        hg = hessian_gradient(model, leaves, batches, temperature)
    return finish({n: leaves[n] * hg[n] for n in leaves}, mask)
