"""`feddst`: Federated Dynamic Sparse Training (Bibikar et al., AAAI 2022, arXiv 2112.09824,
Sec. 3 and Algorithm 1; reference code bibikar/feddst `dst.py` (round loop, client `train`,
aggregation), `models.py` (`layer_prune`, `layer_grow`, `_weights_by_layer`, `_decay`),
`datasets.py` (batches, normalisation)).

Clients adopt the global mask, train with it enforced and, on readjustment rounds, prune a
fraction of their active weights by magnitude and regrow as many inactive ones by gradient (see
fedsparse.train.readjust). The server averages each coordinate over the clients holding it, takes
the union of the client masks and prunes each layer back to its budget by magnitude.

How regrown weights reach the global mask: by default the client readjusts before its last
`regrow_train_epochs` local epoch(s), so regrown weights are trained (non-zero) when uploaded and
compete with the others on magnitude in the server's prune; because a coordinate is averaged only
over the clients holding it, one client's regrown weight is not diluted by the others' zeros.
The paper configs (and `faithful=true`) readjust after the last epoch, as the reference code
does, so regrown weights are uploaded as exact zeros and are pruned first.

`faithful=true` switches on each behaviour of the reference code as a setting of its own
(`FAITHFUL_SETTINGS`, docs/config.md). Deviations that remain, and why:
- Seeds: initial weights, split, batch order and sampling are seeded (the reference is not), so
  runs are reproducible; its unseeded PyTorch initialisation is the same distribution.
- The split is this project's LotteryFL-style pathological split, not the LotteryFL code's own
  draw (same shape: 2 shards x 20 images per client, test sets = all test images of its classes).
- Layer budget: `feddst_erk` solves the reference's scaled sparsities exactly over the weight
  tensors and rounds to the global total; the reference also counts biases in each layer's size
  and floors, so per-layer counts can differ by a few weights.
- Server prune: each layer over its budget is pruned back to it (the reference tests the global
  density first, then prunes every layer); layers never go below their budget here.
- A client drawn k times in one round trains once and its update weighs k times: the reference
  trains it k times from the same state with the same batch order, which gives the same update.
  Its bytes are counted once (one real message each way).
- Bytes are the serialized Flower messages (values, positions when masks change); the reference's
  bit formula is recorded beside them.
"""

from __future__ import annotations

from typing import Any

import torch
from flwr.serverapp import Grid

from fedsparse.fl.strategies.base import SparseFedAvg
from fedsparse.fl.strategies.initial_mask import initial_mask
from fedsparse.sparse.budgets import layer_budget
from fedsparse.sparse.mask import Mask
from fedsparse.sparse.prune_grow import RuleInputs, readjust
from fedsparse.sparse.schedules import DROP_SCHEDULES


class FedDST(SparseFedAvg):
    """FedDST with a per-layer budget fixed at `1 - sparsity` density."""

    def initialize(self, grid: Grid) -> None:
        self.budget = layer_budget(self.cfg.mask.budget, {n: self.shapes[n] for n in self.masked},
                                   1.0 - self.cfg.mask.sparsity)
        self.set_mask(initial_mask(self, grid))

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "budget": dict(self.budget)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.budget = {n: int(state["budget"][n]) for n in self.masked}

    def schedule_round(self, server_round: int) -> int:
        """The readjustment schedule's counter t: the round (1, 2, ...), or with
        `readjust_counter=zero` the reference code's 0-based round counter (0, 1, ...)."""
        return server_round - 1 if self.cfg.readjust.readjust_counter == "zero" else server_round

    def readjusts(self, server_round: int) -> bool:
        """(t - 1) % readjust_every == 0 and t < readjust_until, t = schedule_round."""
        t = self.schedule_round(server_round)
        return (t - 1) % self.cfg.readjust.readjust_every == 0 and t < self.cfg.readjust.readjust_until

    def client_instructions(self, server_round: int) -> dict[str, Any]:
        readjust = self.readjusts(server_round)
        t = self.schedule_round(server_round)
        fraction = (DROP_SCHEDULES.get(self.cfg.readjust.alpha_schedule)(t, self.cfg.readjust.readjust_until,
                                                                self.cfg.readjust.alpha) if readjust else 0.0)
        return {**super().client_instructions(server_round), "readjust": readjust,
                "drop_fraction": float(fraction)}

    def server_update(self, server_round: int, average: dict[str, torch.Tensor],
                      union: Mask | None) -> None:
        """Prune each layer of the union of the client masks back to its budget by the magnitude
        of the average (no growth)."""
        assert union is not None
        excess = {n: max(0, int(union[n].sum()) - self.budget[n]) for n in self.masked}
        self.state = average
        self.set_mask(readjust(union, RuleInputs(weights=average), excess, grow=None).mask)
