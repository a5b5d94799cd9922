"""`fixed_mask`: prune at initialisation with any criterion, then FedAvg on the fixed support."""

from __future__ import annotations

from flwr.serverapp import Grid

from fedsparse.fl.strategies.base import SparseFedAvg
from fedsparse.fl.strategies.initial_mask import initial_mask


class FixedMask(SparseFedAvg):
    """The mask chosen before round 1 never changes; clients train on it."""

    def initialize(self, grid: Grid) -> None:
        self.set_mask(initial_mask(self, grid))
