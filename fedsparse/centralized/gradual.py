"""`gradual`: dense start, magnitude pruning to the target on Zhu & Gupta's cubic AGP schedule."""

from __future__ import annotations

from fedsparse.centralized.registry import CENTRAL_METHODS, Method
from fedsparse.sparse.budgets import layer_budget
from fedsparse.sparse.mask import Mask
from fedsparse.sparse.ops import prune_lowest
from fedsparse.sparse.schedules import agp_density
from fedsparse.train.local import LocalTrainer


@CENTRAL_METHODS.register("gradual")
class Gradual(Method):
    """Every `readjust_steps` steps (and at the end step) the density follows
    `agp_density(step, 0, end_step, 1 - sparsity)`, reached at `readjust_until` of training; each
    layer keeps its share under `budget` at that density, dropping its smallest |w|. Pruned
    weights never return."""

    def initial_mask(self) -> Mask:
        return Mask.ones(self.setup.model, self.setup.names)

    def update(self, trainer: LocalTrainer, step: int) -> None:
        s, cfg = self.setup, self.setup.cfg
        if step > s.end_step or (step % cfg.readjust_steps and step != s.end_step):
            return
        density = (agp_density(step, 0, s.end_step, cfg.density) if s.end_step > 0
                   else cfg.density)
        kept = layer_budget(cfg.budget, s.shapes(), density)
        mask = trainer.optimizer.mask
        drop = {n: max(int(m.sum()) - kept[n], 0) for n, m in mask.items()}
        if any(drop.values()):
            params = dict(s.model.named_parameters())
            magnitude = {n: params[n].detach().abs() for n in s.names}
            trainer.set_mask(prune_lowest(mask, magnitude, drop))
