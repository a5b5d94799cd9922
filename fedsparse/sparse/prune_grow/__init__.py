"""Dynamic sparse training's prune/grow step: rule registries and the one `readjust` routine."""

from fedsparse.sparse.prune_grow.grow_rules import GROW_RULES, GrowRule
from fedsparse.sparse.prune_grow.inputs import RuleInputs
from fedsparse.sparse.prune_grow.prune_rules import PRUNE_RULES, PruneRule
from fedsparse.sparse.prune_grow.readjust import REGROW_FROM, Readjusted, readjust

__all__ = ["GROW_RULES", "PRUNE_RULES", "REGROW_FROM", "GrowRule", "PruneRule", "Readjusted",
           "RuleInputs", "readjust"]
