"""`CENTRAL_METHODS`: registry of centralized training methods, and the `Method` interface they share.

A method decides the starting mask (or none: dense) and may change the mask during training from
`update`, which runs after each backward pass, before the optimizer step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from fedsparse.registry import Registry
from fedsparse.sparse.criteria import Batches
from fedsparse.sparse.mask import Mask
from fedsparse.train.local import LocalTrainer

if TYPE_CHECKING:
    from fedsparse.centralized.config import CentralConfig  # a type only: it reads CENTRAL_METHODS

@dataclass
class Setup:
    """What a method sees: settings, the model, its prunable weights, the data for scoring,
    the length of training, and a seeded generator of its own."""

    cfg: CentralConfig
    model: nn.Module
    names: list[str]
    score_batches: Batches
    input_shape: tuple[int, int, int]
    total_steps: int
    generator: torch.Generator

    @property
    def end_step(self) -> int:
        """Last optimizer step (0-based) at which the mask may change: readjust_until of training."""
        return min(math.ceil(self.cfg.readjust_until * self.total_steps), self.total_steps - 1)

    def shapes(self) -> dict[str, torch.Size]:
        params = dict(self.model.named_parameters())
        return {n: params[n].shape for n in self.names}


class Method:
    """Base: dense training, no mask changes. Subclasses override what they need."""

    def __init__(self, setup: Setup) -> None:
        self.setup = setup

    def initial_mask(self) -> Mask | None:
        """The mask to train with from step 0; None trains dense (no mask at all)."""
        return None

    def update(self, trainer: LocalTrainer, step: int) -> None:
        """Runs before optimizer step `step` (0-based, counted over the whole run) with the batch
        gradient in `.grad`; may change the mask with `trainer.set_mask`."""


CENTRAL_METHODS: Registry[type[Method]] = Registry("centralized method")
