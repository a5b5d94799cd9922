"""`rigl` and `set`: dynamic sparse training on a mask whose layer densities never change.

Every `readjust_steps` optimizer steps, until `readjust_until` of training, each layer drops the
fraction `alpha_schedule(step, end, alpha)` of its active weights with the smallest |w| and grows
as many inactive ones: RigL (Evci et al., ICML 2020) by the largest |dL/dw| of the current batch,
SET (Mocanu et al., 2018) at random. Grown weights start at zero: they were pruned, and the
masked optimizer keeps pruned weights and their momentum at exactly zero.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch

from fedsparse.centralized.registry import CENTRAL_METHODS, Method
from fedsparse.sparse.criteria import score
from fedsparse.sparse.mask import Mask
from fedsparse.sparse.ops import readjust
from fedsparse.sparse.schedules import DROP_SCHEDULES
from fedsparse.sparse.select import select_mask
from fedsparse.train.local import LocalTrainer


class DynamicSparse(Method, ABC):
    """Random starting mask under the layer budget; prune by magnitude, grow by `growth_scores`."""

    def initial_mask(self) -> Mask:
        s = self.setup
        scores = score("random", s.model, s.names, None, generator=s.generator)
        return select_mask(scores, s.cfg.density, scope="layer", budget=s.cfg.budget)

    @abstractmethod
    def growth_scores(self) -> dict[str, torch.Tensor]:
        """Per-layer scores; the highest inactive entries are grown."""

    def update(self, trainer: LocalTrainer) -> None:
        s, cfg = self.setup, self.setup.cfg
        if self.step == 0 or self.step % cfg.readjust_steps or self.step >= s.end_step:
            return
        fraction = DROP_SCHEDULES.get(cfg.alpha_schedule)(self.step, s.end_step, cfg.alpha)
        params = dict(s.model.named_parameters())
        magnitude = {n: params[n].detach().abs() for n in s.names}
        trainer.set_mask(readjust(trainer.optimizer.mask, magnitude, self.growth_scores(),
                                  fraction))


@CENTRAL_METHODS.register("rigl")
class RigL(DynamicSparse):
    """Grow where the current batch's loss gradient is largest."""

    def growth_scores(self) -> dict[str, torch.Tensor]:
        params = dict(self.setup.model.named_parameters())
        return {n: params[n].grad.detach().abs() for n in self.setup.names}


@CENTRAL_METHODS.register("set")
class SET(DynamicSparse):
    """Grow uniformly at random among the inactive weights."""

    def growth_scores(self) -> dict[str, torch.Tensor]:
        s = self.setup
        return score("random", s.model, s.names, None, generator=s.generator)
