"""`random`: uniform noise in [0, 1), the baseline every criterion should beat."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from fedsparse.sparse.criteria.gradients import finish, named_weights
from fedsparse.sparse.criteria.registry import CRITERIA, Batches
from fedsparse.sparse.mask import Mask


@CRITERIA.register("random")
def random_scores(model: nn.Module, names: list[str], batches: Batches | None,
                  mask: Mask | None = None,
                  generator: torch.Generator | None = None) -> dict[str, Tensor]:
    """U[0, 1) noise drawn from `generator` (the global RNG when None), in the order of `names`."""
    device = generator.device if generator is not None else None
    scores = {n: torch.rand(w.shape, generator=generator, device=device).to(w.device)
              for n, w in named_weights(model, names).items()}
    return finish(scores, mask)
