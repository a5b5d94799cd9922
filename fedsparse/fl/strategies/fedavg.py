"""`fedavg`: dense FedAvg (McMahan et al.), sample-weighted."""

from fedsparse.fl.strategies.base import SparseFedAvg
from fedsparse.fl.strategies.registry import STRATEGIES

STRATEGIES.register("fedavg")(SparseFedAvg)
