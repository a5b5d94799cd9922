"""`movement`: first-order movement score -w * dL/dw (Sanh et al., NeurIPS 2020)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from fedsparse.sparse.criteria.gradients import (finish, loss_gradient, masked_leaves,
                                                 named_weights, require_batches)
from fedsparse.sparse.criteria.registry import CRITERIA, Batches
from fedsparse.sparse.criteria.side_effects import no_side_effects
from fedsparse.sparse.mask import Mask


@CRITERIA.register("movement")
def movement_scores(model: nn.Module, names: list[str], batches: Batches | None,
                    mask: Mask | None = None,
                    generator: torch.Generator | None = None) -> dict[str, Tensor]:
    """-w * dL_b/dw summed over batches at the given weights: high when SGD moves w away from 0."""
    batches = require_batches("movement", batches)
    with no_side_effects(model, batchnorm_train=True):
        leaves = masked_leaves(named_weights(model, names), mask)
        grads = loss_gradient(model, leaves, batches)
    return finish({n: -leaves[n] * grads[n] for n in leaves}, mask)
