"""`STRATEGIES`: registry of server strategies (classes taking an Experiment, a device, nodes)."""

from fedsparse.registry import Registry

STRATEGIES: Registry[type] = Registry("strategy")
