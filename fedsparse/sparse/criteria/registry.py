"""`CRITERIA`: registry of weight-scoring functions, and `score` to call one by name.

Every criterion has the signature of `Criterion` and returns, for each name, a float32 tensor of
the weight's shape on the weight's device; HIGHER = more important (keep). Entries outside a given
`mask` score -inf for every criterion except `gradient` (which scores all entries, for growth).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from fedsparse.registry import Registry
from fedsparse.sparse.mask import Mask

Batches = Sequence[tuple[Tensor, Tensor]]
"""(inputs float, labels int64) pairs, already normalised."""

Criterion = Callable[..., dict[str, Tensor]]
"""`(model, names, batches, mask=None, generator=None, **options) -> {name: score tensor}`."""

CRITERIA: Registry[Criterion] = Registry("criterion")


def score(name: str, model: nn.Module, names: list[str], batches: Batches | None,
          mask: Mask | None = None, generator: torch.Generator | None = None,
          **kwargs: Any) -> dict[str, Tensor]:
    """Scores of `names` under criterion `name`; `kwargs` go to the criterion."""
    return CRITERIA.get(name)(model, names, batches, mask, generator, **kwargs)
