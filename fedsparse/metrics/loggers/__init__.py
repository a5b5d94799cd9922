"""Experiment loggers: where a run's metric rows go besides metrics.jsonl / metrics.csv (`logger`)."""

from fedsparse.metrics.loggers import tensorboard  # noqa: F401 - registers the logger
from fedsparse.metrics.loggers.base import RunLogger, open_logger
from fedsparse.metrics.loggers.registry import LOGGERS

__all__ = ["LOGGERS", "RunLogger", "open_logger"]
