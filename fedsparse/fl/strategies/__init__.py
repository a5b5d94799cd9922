"""Server strategies, one file each, behind the `STRATEGIES` registry."""

from fedsparse.fl.strategies import feddst, fedavg, fedavgm, fedprox, fixed_mask  # noqa: F401
from fedsparse.fl.strategies.registry import STRATEGIES

__all__ = ["STRATEGIES"]
