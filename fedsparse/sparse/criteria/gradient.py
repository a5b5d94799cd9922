"""`gradient`: |dL/dw|, the growth score of RigL (and of FedDST's regrowth)."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from fedsparse.sparse.criteria.gradients import (loss_gradient, masked_leaves, named_weights,
                                                 require_batches)
from fedsparse.sparse.criteria.registry import CRITERIA, Batches
from fedsparse.sparse.criteria.side_effects import no_side_effects
from fedsparse.sparse.mask import Mask


def gradient_magnitude(grads: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """|dL/dw| in float32 of given loss gradients: this criterion's score, and the `gradient`
    growth rule's (fedsparse.sparse.prune_grow)."""
    return {n: g.abs().to(torch.float32) for n, g in grads.items()}


@CRITERIA.register("gradient")
def gradient_scores(model: nn.Module, names: list[str], batches: Batches | None,
                    mask: Mask | None = None,
                    generator: torch.Generator | None = None) -> dict[str, Tensor]:
    """|sum over batches of dL_b/dw| at the masked weights, for EVERY entry, pruned ones included
    (growth ranks the inactive entries by it); nothing is set to -inf."""
    batches = require_batches("gradient", batches)
    with no_side_effects(model, batchnorm_train=True):
        leaves = masked_leaves(named_weights(model, names), mask)
        grads = loss_gradient(model, leaves, batches)
    return gradient_magnitude(grads)
