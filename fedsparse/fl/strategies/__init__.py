"""Server strategies, one file each, declared in the `STRATEGIES` registry (which imports no Flower)."""

from fedsparse.fl.strategies.registry import STRATEGIES, StrategyEntry

__all__ = ["STRATEGIES", "StrategyEntry"]
