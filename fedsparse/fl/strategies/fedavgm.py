"""`fedavgm`: FedAvg with server momentum (Hsu et al. 2019), FedDST's dense baseline."""

from __future__ import annotations

import torch

from fedsparse.experiment import Experiment
from fedsparse.fl.strategies.base import SparseFedAvg
from fedsparse.fl.strategies.registry import STRATEGIES
from fedsparse.sparse.mask import Mask


@STRATEGIES.register("fedavgm")
class FedAvgM(SparseFedAvg):
    """v <- beta v + (avg - w); w <- w + server_lr v."""

    def __init__(self, exp: Experiment, device: torch.device, node_of: dict[int, int]) -> None:
        super().__init__(exp, device, node_of)
        self.velocity = {n: torch.zeros_like(t) for n, t in self.state.items()}

    def server_update(self, server_round: int, average: dict[str, torch.Tensor],
                      union: Mask | None) -> None:
        beta, lr = self.cfg.server_momentum, self.cfg.server_lr
        for n, w in self.state.items():
            self.velocity[n].mul_(beta).add_(average[n] - w)
            self.state[n] = w + lr * self.velocity[n]
