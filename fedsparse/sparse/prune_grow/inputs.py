"""`RuleInputs`: what a prune or grow rule may read."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from fedsparse.errors import ConfigError


@dataclass(frozen=True)
class RuleInputs:
    """The state a rule scores from; a rule reads only what it needs.

    `weights`: current values of (at least) the masked layers: the model's weights, or the
    server's average. `model`: the model, for rules that call a criterion (None on the server).
    `loss_gradients`: returns dense dL/dw of the masked layers, called only by rules that need
    it (how the gradient is measured is the caller's: a client's data, RigL's current batch).
    `generator`: the random stream of random rules."""

    weights: Mapping[str, Tensor]
    model: nn.Module | None = None
    loss_gradients: Callable[[], Mapping[str, Tensor]] | None = None
    generator: torch.Generator | None = None

    def need_model(self, rule: str) -> nn.Module:
        if self.model is None:
            raise ConfigError(f"rule '{rule}' needs the model; none was given")
        return self.model

    def need_gradients(self, rule: str) -> Mapping[str, Tensor]:
        if self.loss_gradients is None:
            raise ConfigError(f"rule '{rule}' needs loss gradients; none were given")
        return self.loss_gradients()
