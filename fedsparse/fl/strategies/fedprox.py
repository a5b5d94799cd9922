"""`fedprox`: FedAvg with the clients' proximal term mu/2 ||w - w_global||^2 (Li et al.)."""

from __future__ import annotations

from typing import Any

from fedsparse.fl.strategies.base import SparseFedAvg

DEFAULT_MU = 0.01


class FedProx(SparseFedAvg):
    """Dense FedAvg whose clients add a proximal term (mu = `proximal_mu`, 0.01 if unset).

    `proximal_mu` also works with every other strategy, sparse ones included.
    """

    def client_instructions(self, server_round: int) -> dict[str, Any]:
        mu = self.cfg.train.fedprox.proximal_mu
        return {**super().client_instructions(server_round),
                "proximal_mu": float(DEFAULT_MU if mu is None else mu)}
