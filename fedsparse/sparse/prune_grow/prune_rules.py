"""`PRUNE_RULES`: how the active weights to drop are ranked (the lowest scores are dropped).

Every rule has the signature `PruneRule`: `(mask, inputs) -> {name: scores}`, one float tensor of
the layer's shape per layer of `mask`; HIGHER = keep. A new rule is one function registered here.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor

from fedsparse.registry import Registry
from fedsparse.sparse.mask import Mask
from fedsparse.sparse.prune_grow.inputs import RuleInputs

PruneRule = Callable[[Mask, RuleInputs], dict[str, Tensor]]

PRUNE_RULES: Registry[PruneRule] = Registry("prune rule")


@PRUNE_RULES.register("magnitude")
def magnitude_prune(mask: Mask, inputs: RuleInputs) -> dict[str, Tensor]:
    """|w|: the smallest weights are dropped (RigL, SET, FedDST)."""
    return {n: inputs.weights[n].detach().abs() for n in mask}
