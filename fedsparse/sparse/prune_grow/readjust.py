"""`readjust`: the one prune-then-grow step of dynamic sparse training.

Used by FedDST's client (prune a fraction, regrow), FedDST's server (prune the union back to the
layer budgets, no growth) and centralized RigL / SET. Pure on masks: the caller applies the result
to its weights (`Readjusted.pruned` / `grown` say which ones changed).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from fedsparse.errors import ConfigError
from fedsparse.sparse.mask import Mask
from fedsparse.sparse.ops import grow_highest, prune_lowest
from fedsparse.sparse.prune_grow.grow_rules import GROW_RULES
from fedsparse.sparse.prune_grow.inputs import RuleInputs
from fedsparse.sparse.prune_grow.prune_rules import PRUNE_RULES

REGROW_FROM = ("inactive", "all")


@dataclass(frozen=True)
class Readjusted:
    """`pruned`: the mask after the prune step; `grown`: the coordinates growth chose (with
    `regrow_from="all"` it may include active ones); `mask`: the new mask, `pruned | grown`."""

    pruned: Mask
    grown: Mask
    mask: Mask


def _drop_counts(mask: Mask, fraction: float) -> dict[str, int]:
    """round(fraction * active) per layer; ConfigError unless 0 <= fraction <= 1."""
    if not 0.0 <= fraction <= 1.0:
        raise ConfigError(f"readjust fraction must be in [0, 1], got {fraction}")
    return {n: round(fraction * int(m.sum())) for n, m in mask.items()}


def _top_all(scores: dict[str, torch.Tensor], mask: Mask, k: dict[str, int]) -> Mask:
    """The k[name] highest `scores` over every coordinate (torch.topk, as the FedDST reference)."""
    out = {}
    for n, m in mask.items():
        flat = torch.zeros(m.numel(), dtype=torch.bool, device=m.device)
        flat[torch.topk(scores[n].reshape(-1), k.get(n, 0)).indices.to(m.device)] = True
        out[n] = flat.reshape(m.shape)
    return Mask(out)


def readjust(mask: Mask, inputs: RuleInputs, drop: float | dict[str, int], *,
             prune: str = "magnitude", grow: str | None = "gradient",
             regrow_from: str = "inactive") -> Readjusted:
    """Per layer, drop `drop` active weights (a fraction of the layer's active count, or counts
    by name; layers absent from the counts are kept) ranked lowest by PRUNE_RULES[prune], then
    grow as many ranked highest by GROW_RULES[grow] (`grow=None`: no growth).

    `regrow_from="inactive"`: growth picks among the weights inactive after pruning (a weight just
    dropped may come back), so layer densities are unchanged. `regrow_from="all"` (the FedDST
    reference code): the top scores over ALL coordinates; active ones it hits stay active (the
    caller resets them), so fewer weights may be grown than were dropped. Ties go to the lower
    flat index, except with "all" (torch.topk's order)."""
    if regrow_from not in REGROW_FROM:
        raise ConfigError(f"unknown regrow_from '{regrow_from}'; allowed: {', '.join(REGROW_FROM)}")
    prune_rule = PRUNE_RULES.get(prune)
    grow_rule = GROW_RULES.get(grow) if grow is not None else None
    k = _drop_counts(mask, drop) if isinstance(drop, float | int) else drop
    pruned = prune_lowest(mask, prune_rule(mask, inputs), k)
    if grow_rule is None:
        return Readjusted(pruned, Mask({n: torch.zeros_like(m) for n, m in mask.items()}), pruned)
    scores = grow_rule(pruned, inputs)
    if regrow_from == "all":
        grown = _top_all(scores, pruned, k)
        return Readjusted(pruned, grown, Mask({n: pruned[n] | grown[n] for n in pruned}))
    new = grow_highest(pruned, scores, k)
    return Readjusted(pruned, Mask({n: new[n] & ~pruned[n] for n in new}), new)
