"""`fixed`: prune at initialisation with any criterion, then train on that mask unchanged."""

from __future__ import annotations

from fedsparse.centralized.registry import CENTRAL_METHODS, Method
from fedsparse.sparse.budgets import layer_budget
from fedsparse.sparse.criteria import score, synflow_mask
from fedsparse.sparse.mask import Mask
from fedsparse.sparse.select import select_mask


@CENTRAL_METHODS.register("fixed")
class Fixed(Method):
    """Score the initial weights with `criterion` on `score_batches` and keep the best: per layer
    under the budget `budget` (scope "layer"), or by one ranking across layers (scope "global",
    where the criterion also decides the layer densities). SynFlow runs its own iterative pruning
    to those targets."""

    def initial_mask(self) -> Mask:
        s, cfg = self.setup, self.setup.cfg
        if cfg.criterion == "synflow":
            if cfg.scope == "global":
                return synflow_mask(s.model, s.names, cfg.density, s.input_shape, scope="global")
            shapes = s.shapes()
            counts = layer_budget(cfg.budget, shapes, cfg.density)
            densities = {n: counts[n] / shapes[n].numel() for n in s.names}
            return synflow_mask(s.model, s.names, densities, input_shape=s.input_shape)
        scores = score(cfg.criterion, s.model, s.names, s.score_batches, generator=s.generator)
        return select_mask(scores, cfg.density, scope=cfg.scope, budget=cfg.budget)
