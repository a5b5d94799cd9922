"""`snip`: connection sensitivity |w * dL/dw| (Lee et al., ICLR 2019)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from fedsparse.sparse.criteria.gradients import (finish, loss_gradient, masked_leaves,
                                                 named_weights, require_batches)
from fedsparse.sparse.criteria.registry import CRITERIA, Batches
from fedsparse.sparse.criteria.side_effects import no_side_effects
from fedsparse.sparse.mask import Mask


@CRITERIA.register("snip")
def snip_scores(model: nn.Module, names: list[str], batches: Batches | None,
                mask: Mask | None = None,
                generator: torch.Generator | None = None) -> dict[str, Tensor]:
    """|w * g| with g = sum over batches of dL_b/dw, at the given (masked) weights."""
    batches = require_batches("snip", batches)
    with no_side_effects(model, batchnorm_train=True):
        leaves = masked_leaves(named_weights(model, names), mask)
        grads = loss_gradient(model, leaves, batches)
    return finish({n: (leaves[n] * grads[n]).abs() for n in leaves}, mask)
