"""`LOGGERS`: the experiment loggers (RunLogger subclasses) by `logger` config value."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fedsparse.registry import Registry

if TYPE_CHECKING:
    from fedsparse.metrics.loggers.base import RunLogger

LOGGERS: Registry[type[RunLogger]] = Registry("logger")
