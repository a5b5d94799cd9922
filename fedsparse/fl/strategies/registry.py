"""`STRATEGIES`: the server strategies a config can name, declared without importing Flower.

Each entry says whether the strategy trains a sparse model, where its Flower strategy class (a
`SparseFedAvg`) lives and where its client step lives (a `ClientMethod`: what a node does with a
train message; fedsparse.train.client_update's masked training by default); `load` and `client`
import them. A strategy with options registers their dataclass (config `strategy_options`).
Validating a config reads only the names, `sparse` and the options, so it imports no Flower. A new
method is its server strategy under `fl/strategies/`, its flwr-free side (options, rules, client
step) under `fedsparse/methods/`, and one entry here.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fedsparse.methods.fedrts import FedRTSOptions
from fedsparse.methods.flash import FlashOptions
from fedsparse.methods.pffdst import PFFDSTOptions
from fedsparse.methods.prunefl import PruneFLOptions
from fedsparse.methods.sparsyfed import SparsyFedOptions
from fedsparse.registry import Registry

if TYPE_CHECKING:
    from fedsparse.config import Config
    from fedsparse.fl.strategies.base import SparseFedAvg
    from fedsparse.train.client_update import ClientMethod

STRATEGY_OPTIONS_KEY = "strategy_options"


@dataclass(frozen=True)
class StrategyEntry:
    """A registered strategy: `sparse` = it keeps a global mask (only the active weights travel);
    `target` = "module:Class" of its Flower strategy; `client_target` = "module:Class" of its
    client step (flwr-free)."""

    sparse: bool
    target: str
    client_target: str = "fedsparse.train.client_update:ClientMethod"

    def load(self) -> type[SparseFedAvg]:
        """The strategy class (imports its module, and so Flower)."""
        return _import(self.target)

    def client(self) -> ClientMethod:
        """The client step (no Flower import)."""
        return _import(self.client_target)()


def _import(target: str) -> Any:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def strategy_options(cfg: Config) -> Any:
    """The options dataclass of `cfg`'s strategy, built from `strategy_options`."""
    return STRATEGIES.options(cfg.train.strategy, cfg.train.strategy_options, STRATEGY_OPTIONS_KEY, cfg)


STRATEGIES: Registry[StrategyEntry] = Registry("strategy")
STRATEGIES.register("fedavg")(StrategyEntry(False, "fedsparse.fl.strategies.base:SparseFedAvg"))
STRATEGIES.register("fedavgm")(StrategyEntry(False, "fedsparse.fl.strategies.fedavgm:FedAvgM"))
STRATEGIES.register("fedprox")(StrategyEntry(False, "fedsparse.fl.strategies.fedprox:FedProx"))
STRATEGIES.register("fixed_mask")(StrategyEntry(True, "fedsparse.fl.strategies.fixed_mask:FixedMask"))
STRATEGIES.register("feddst")(StrategyEntry(True, "fedsparse.fl.strategies.feddst:FedDST"))
STRATEGIES.register("prunefl", options=PruneFLOptions)(StrategyEntry(
    True, "fedsparse.fl.strategies.prunefl:PruneFL", "fedsparse.methods.prunefl_client:PruneFLClient"))
STRATEGIES.register("flash", options=FlashOptions)(StrategyEntry(
    True, "fedsparse.fl.strategies.flash:Flash", "fedsparse.methods.flash_client:FlashClient"))
STRATEGIES.register("pffdst", options=PFFDSTOptions)(StrategyEntry(
    True, "fedsparse.fl.strategies.pffdst:PFFDST", "fedsparse.methods.pffdst_client:PFFDSTClient"))
STRATEGIES.register("fedrts", options=FedRTSOptions)(StrategyEntry(
    True, "fedsparse.fl.strategies.fedrts:FedRTS", "fedsparse.methods.fedrts_client:FedRTSClient"))
STRATEGIES.register("sparsyfed", options=SparsyFedOptions)(StrategyEntry(
    True, "fedsparse.fl.strategies.sparsyfed:SparsyFed", "fedsparse.methods.sparsyfed_client:SparsyFedClient"))
