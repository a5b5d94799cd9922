"""PFFDST's client step (options and rules: fedsparse.methods.pffdst; server:
fedsparse.fl.strategies.pffdst).

- Stage 1 (the message carries no `frozen_bits`): masked local training on the global mask, as
  fedsparse.train.client_update (no client readjustment: the code's full method has
  readjustment_ratio 0); the reply carries the mask's values, no positions.
- Stage 2 (`extra.frozen_bits`: F as one bit per active weight of the global mask M = F | T): the
  client rebuilds F from its copy of M, trains with M enforced and, after every optimizer step,
  writes F's received values back, bit for bit (the code's `reset_weights` after
  `optimizer.step()`, dst.py l.370, models.py l.538-542: F's gradients and momentum are still
  computed, and F's weights enter every forward pass at their frozen values). The reply carries
  the values of T = M & ~F only, without positions (the server decodes it with T).
  Metric `frozen_copy_bytes`: the copy of F's values the client keeps during training (4 bytes per
  frozen weight); the forward/backward work is FedDST's at density |M|.

This module is apart from fedsparse.methods.pffdst because it imports
fedsparse.train.client_update, which imports fedsparse.experiment and so the strategy registry;
the registry imports PFFDSTOptions from fedsparse.methods.pffdst, so that module cannot import it
back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from fedsparse.experiment import Experiment
from fedsparse.methods.pffdst import FROZEN_BITS, frozen_from_bits, restore_frozen
from fedsparse.sparse.mask import Mask
from fedsparse.sparse.masked_optim import MaskedOptimizer
from fedsparse.train.client_update import ClientMethod, ClientResult, LocalRound, client_update


class FrozenMaskedOptimizer(MaskedOptimizer):
    """A `MaskedOptimizer` that, after every step, writes the values the frozen weights had at
    construction back at the frozen positions."""

    def __init__(self, optimizer: torch.optim.Optimizer, model: nn.Module, mask: Mask,
                 frozen: Mask) -> None:
        super().__init__(optimizer, model, mask)
        self.frozen = frozen
        self._frozen_values = {n: self._params[n].detach().clone() for n in frozen}

    @property
    def frozen_values_bytes(self) -> int:
        """Bytes of the kept copy of the frozen values (their count x the element size)."""
        return sum(int(f.sum()) * self._frozen_values[n].element_size()
                   for n, f in self.frozen.items())

    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor | None:
        loss = super().step(closure)
        restore_frozen({n: self._params[n] for n in self.frozen}, self.frozen, self._frozen_values)
        return loss


class PFFDSTClient(ClientMethod):
    """Stage 1: masked training; stage 2: masked training with the frozen weights kept exact,
    replying with the trainable part of the mask."""

    def train(self, exp: Experiment, model: torch.nn.Module, mask: Mask | None, pid: int,
              server_round: int, instructions: Mapping[str, Any],
              extras: Mapping[str, np.ndarray]) -> ClientResult:
        if mask is None:
            raise ValueError("PFFDST trains a masked model: the message carried no mask")
        mu = float(instructions.get("proximal_mu", 0.0))
        if FROZEN_BITS not in extras:
            result = client_update(exp, model, mask, pid, server_round, proximal_mu=mu)
            result.metrics = {"frozen_copy_bytes": 0.0}
            return result
        frozen = frozen_from_bits(mask, extras[FROZEN_BITS], exp.masked_names)
        return train_frozen(exp, model, mask, frozen, pid, server_round, proximal_mu=mu)


def train_frozen(exp: Experiment, model: torch.nn.Module, mask: Mask, frozen: Mask, pid: int,
                 server_round: int, *, proximal_mu: float = 0.0) -> ClientResult:
    """One round of stage-2 training on partition `pid` (the draws of
    fedsparse.train.client_update: batch order and augmentation from the round's client
    generator); returns T = mask & ~frozen as the reply's mask."""
    local = LocalRound.start(exp, model, mask, pid, server_round, proximal_mu)
    optimizer = FrozenMaskedOptimizer(local.trainer.optimizer.optimizer, model, mask, frozen)
    local.trainer.optimizer = optimizer
    loss = local.train(exp.cfg.train.local_epochs)
    trainable = Mask({n: m & ~frozen[n].to(m.device) for n, m in mask.items()})
    return ClientResult(trainable, len(local.y), loss, 0,
                        metrics={"frozen_copy_bytes": float(optimizer.frozen_values_bytes)})
