"""`STRATEGIES`: the server strategies a config can name, declared without importing Flower.

Each entry says whether the strategy trains a sparse model and where its Flower strategy class (a
`SparseFedAvg`) lives; `load` imports it. Validating a config reads only the names and `sparse`, so
it imports no Flower. A new strategy is one file under `fl/strategies/` plus one entry here.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fedsparse.registry import Registry

if TYPE_CHECKING:
    from fedsparse.fl.strategies.base import SparseFedAvg


@dataclass(frozen=True)
class StrategyEntry:
    """A registered strategy: `sparse` = it keeps a global mask (only the active weights travel);
    `target` = "module:Class" of its Flower strategy."""

    sparse: bool
    target: str

    def load(self) -> type[SparseFedAvg]:
        """The strategy class (imports its module, and so Flower)."""
        module, _, name = self.target.partition(":")
        return getattr(importlib.import_module(module), name)


STRATEGIES: Registry[StrategyEntry] = Registry("strategy")
STRATEGIES.register("fedavg")(StrategyEntry(False, "fedsparse.fl.strategies.base:SparseFedAvg"))
STRATEGIES.register("fedavgm")(StrategyEntry(False, "fedsparse.fl.strategies.fedavgm:FedAvgM"))
STRATEGIES.register("fedprox")(StrategyEntry(False, "fedsparse.fl.strategies.fedprox:FedProx"))
STRATEGIES.register("fixed_mask")(StrategyEntry(True, "fedsparse.fl.strategies.fixed_mask:FixedMask"))
STRATEGIES.register("feddst")(StrategyEntry(True, "fedsparse.fl.strategies.feddst:FedDST"))
