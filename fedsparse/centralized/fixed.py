"""`fixed`: prune at initialisation with any criterion, then train on that mask unchanged."""

from __future__ import annotations

from fedsparse.centralized.registry import CENTRAL_METHODS, Method
from fedsparse.sparse.budgets import layer_budget
from fedsparse.sparse.criteria import score, synflow_mask
from fedsparse.sparse.mask import Mask
from fedsparse.sparse.select import select_mask


@CENTRAL_METHODS.register("fixed")
class Fixed(Method):
    """Score the initial weights with `criterion` on `score_batches` and keep the best under the
    layer budget `budget`. SynFlow runs its own iterative pruning to the budget's layer densities."""

    def initial_mask(self) -> Mask:
        s, cfg = self.setup, self.setup.cfg
        if cfg.criterion == "synflow":
            shapes = s.shapes()
            counts = layer_budget(cfg.budget, shapes, cfg.density)
            densities = {n: counts[n] / shapes[n].numel() for n in s.names}
            return synflow_mask(s.model, s.names, densities, input_shape=s.input_shape)
        scores = score(cfg.criterion, s.model, s.names, s.score_batches, generator=s.generator)
        return select_mask(scores, cfg.density, scope="layer", budget=cfg.budget)
