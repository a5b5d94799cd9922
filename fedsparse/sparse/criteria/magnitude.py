"""`magnitude`: |w|."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from fedsparse.sparse.criteria.gradients import finish, named_weights
from fedsparse.sparse.criteria.registry import CRITERIA, Batches
from fedsparse.sparse.mask import Mask


@CRITERIA.register("magnitude")
def magnitude_scores(model: nn.Module, names: list[str], batches: Batches | None,
                     mask: Mask | None = None,
                     generator: torch.Generator | None = None) -> dict[str, Tensor]:
    """Absolute weight values; data-free."""
    return finish({n: w.detach().abs() for n, w in named_weights(model, names).items()}, mask)
