"""Centralized (single-process, non-federated) sparse training: dense, fixed masks, RigL, SET, AGP."""

from fedsparse.centralized import dense, dynamic, fixed, gradual  # noqa: F401  (register methods)
from fedsparse.centralized.config import CentralConfig, load_central_config
from fedsparse.centralized.registry import CENTRAL_METHODS, Method, Setup
from fedsparse.centralized.training import CentralTraining

__all__ = ["CENTRAL_METHODS", "CentralConfig", "CentralTraining", "Method", "Setup",
           "load_central_config"]
