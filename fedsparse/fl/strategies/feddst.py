"""`feddst`: Federated Dynamic Sparse Training (Bibikar et al., AAAI 2022).

Clients adopt the global mask, train with it enforced and, on readjustment rounds, prune a
fraction of their active weights by magnitude and regrow as many inactive ones by gradient (see
fedsparse.fl.client_app). The server averages each coordinate over the clients holding it, takes
the union of the client masks and prunes each layer back to its budget by magnitude.

How regrown weights reach the global mask: by default the client readjusts before its last
`regrow_train_epochs` local epoch(s), so regrown weights are trained (non-zero) when uploaded and
compete with the others on magnitude in the server's prune; because a coordinate is averaged only
over the clients holding it, one client's regrown weight is not diluted by the others' zeros.
`faithful=true` readjusts after the last epoch, as the reference code does, so regrown weights are
uploaded as exact zeros and are pruned first.
"""

from __future__ import annotations

from typing import Any

import torch
from flwr.serverapp import Grid

from fedsparse.fl.strategies.base import SparseFedAvg
from fedsparse.fl.strategies.initial_mask import initial_mask
from fedsparse.fl.strategies.registry import STRATEGIES
from fedsparse.sparse.budgets import layer_budget
from fedsparse.sparse.mask import Mask
from fedsparse.sparse.ops import prune_lowest
from fedsparse.sparse.schedules import DROP_SCHEDULES


@STRATEGIES.register("feddst")
class FedDST(SparseFedAvg):
    """FedDST with a per-layer budget fixed at `1 - sparsity` density."""

    sparse = True

    def initialize(self, grid: Grid) -> None:
        self.budget = layer_budget(self.cfg.budget, {n: self.shapes[n] for n in self.masked},
                                   1.0 - self.cfg.sparsity)
        self.set_mask(initial_mask(self, grid))

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "budget": dict(self.budget)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.budget = {n: int(state["budget"][n]) for n in self.masked}

    def readjusts(self, server_round: int) -> bool:
        cfg = self.cfg
        return (server_round - 1) % cfg.readjust_every == 0 and server_round < cfg.readjust_until

    def client_instructions(self, server_round: int) -> dict[str, Any]:
        readjust = self.readjusts(server_round)
        fraction = (DROP_SCHEDULES.get(self.cfg.alpha_schedule)(server_round, self.cfg.readjust_until,
                                                                self.cfg.alpha) if readjust else 0.0)
        return {**super().client_instructions(server_round), "readjust": readjust,
                "drop_fraction": float(fraction)}

    def server_update(self, server_round: int, average: dict[str, torch.Tensor],
                      union: Mask | None) -> None:
        assert union is not None
        magnitude = {n: average[n].abs() for n in self.masked}
        excess = {n: max(0, int(union[n].sum()) - self.budget[n]) for n in self.masked}
        self.state = average
        self.set_mask(prune_lowest(union, magnitude, excess))
