"""`GROW_RULES`: how the weights to activate are ranked (the highest scores are grown).

Every rule has the signature `GrowRule`: `(mask, inputs) -> {name: scores}`, one float tensor of
the layer's shape per layer of `mask` (every entry scored; `readjust` restricts the choice to its
candidates); HIGHER = grow first. A new rule is one function registered with
`@GROW_RULES.register(name)`.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor

from fedsparse.registry import Registry
from fedsparse.sparse.criteria import score
from fedsparse.sparse.criteria.gradient import gradient_magnitude
from fedsparse.sparse.mask import Mask
from fedsparse.sparse.prune_grow.inputs import RuleInputs

GrowRule = Callable[[Mask, RuleInputs], dict[str, Tensor]]

GROW_RULES: Registry[GrowRule] = Registry("growth rule")


@GROW_RULES.register("gradient")
def gradient_growth(mask: Mask, inputs: RuleInputs) -> dict[str, Tensor]:
    """The `gradient` criterion's score |dL/dw| of the caller's loss gradient (RigL, FedDST)."""
    grads = inputs.need_gradients("gradient")
    return gradient_magnitude({n: grads[n] for n in mask})


@GROW_RULES.register("random")
def random_growth(mask: Mask, inputs: RuleInputs) -> dict[str, Tensor]:
    """The `random` criterion's U[0, 1) noise from the inputs' generator, drawn layer by layer in
    the mask's order: uniform among the candidates (SET)."""
    return score("random", inputs.need_model("random"), list(mask), None,
                 generator=inputs.generator)
