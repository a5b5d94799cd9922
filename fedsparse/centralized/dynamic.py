"""`rigl` and `set`: dynamic sparse training on a mask whose layer densities never change.

Every `readjust_steps` optimizer steps, until `readjust_until` of training, each layer drops the
fraction `alpha_schedule(step, end, alpha)` of its active weights with the smallest |w| and grows
as many among the then inactive ones (a weight just dropped may come back): RigL (Evci et al.,
ICML 2020) by the largest |dL/dw| of the current batch, SET (Mocanu et al., 2018) at random.
Grown weights start at zero with zero momentum, as the masked optimizer keeps every pruned weight
and its optimizer state at exactly zero.
"""

from __future__ import annotations

from typing import ClassVar

from fedsparse.centralized.registry import CENTRAL_METHODS, Method
from fedsparse.sparse.criteria import score
from fedsparse.sparse.mask import Mask
from fedsparse.sparse.prune_grow import RuleInputs, readjust
from fedsparse.sparse.schedules import DROP_SCHEDULES
from fedsparse.sparse.select import select_mask
from fedsparse.train.local import LocalTrainer


class DynamicSparse(Method):
    """Random starting mask under the layer budget; prune by magnitude, grow by the growth rule
    `growth` (a GROW_RULES name)."""

    growth: ClassVar[str]

    def initial_mask(self) -> Mask:
        s = self.setup
        scores = score("random", s.model, s.names, None, generator=s.generator)
        return select_mask(scores, s.cfg.density, scope="layer", budget=s.cfg.budget)

    def update(self, trainer: LocalTrainer, step: int) -> None:
        s, cfg = self.setup, self.setup.cfg
        if step == 0 or step % cfg.readjust_steps or step >= s.end_step:
            return
        fraction = DROP_SCHEDULES.get(cfg.alpha_schedule)(step, s.end_step, cfg.alpha)
        params = dict(s.model.named_parameters())
        inputs = RuleInputs(weights=params, model=s.model, generator=s.generator,
                            loss_gradients=lambda: {n: params[n].grad.detach() for n in s.names})
        change = readjust(trainer.optimizer.mask, inputs, fraction, grow=self.growth)
        # zero the dropped weights and their momentum first, so that a weight dropped and grown
        # back in the same update restarts from zero like every other new connection
        trainer.set_mask(change.pruned)
        trainer.set_mask(change.mask)


@CENTRAL_METHODS.register("rigl")
class RigL(DynamicSparse):
    """Grow where the current batch's loss gradient is largest."""

    growth = "gradient"


@CENTRAL_METHODS.register("set")
class SET(DynamicSparse):
    """Grow uniformly at random among the inactive weights."""

    growth = "random"
