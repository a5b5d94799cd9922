"""fedsparse: a federated sparse-training simulator on Flower + Ray."""

__version__ = "0.1.0"
