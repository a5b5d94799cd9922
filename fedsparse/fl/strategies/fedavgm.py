"""`fedavgm`: FedAvg with server momentum (Hsu et al. 2019), FedDST's dense baseline."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from fedsparse.experiment import Experiment
from fedsparse.fl.strategies.base import SparseFedAvg
from fedsparse.sparse.mask import Mask


class FedAvgM(SparseFedAvg):
    """v <- beta v + (avg - w); w <- w + server_lr v."""

    def __init__(self, exp: Experiment, device: torch.device, node_of: Mapping[int, int]) -> None:
        super().__init__(exp, device, node_of)
        self.velocity = {n: torch.zeros_like(t) for n, t in self.state.items()}

    def server_update(self, server_round: int, average: dict[str, torch.Tensor],
                      union: Mask | None) -> None:
        beta, lr = self.cfg.train.fedavgm.server_momentum, self.cfg.train.fedavgm.server_lr
        for n, w in self.state.items():
            self.velocity[n].mul_(beta).add_(average[n] - w)
            self.state[n] = w + lr * self.velocity[n]

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["tensors"].update({f"velocity/{n}": v.detach().cpu() for n, v in self.velocity.items()})
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        velocity = {n: state["tensors"][f"velocity/{n}"] for n in self.shapes}
        if any(v.shape != self.shapes[n] for n, v in velocity.items()):
            raise ValueError("checkpoint velocity does not fit the model")
        self.velocity = {n: v.to(self.device) for n, v in velocity.items()}
