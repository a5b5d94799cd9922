"""Schedules: the drop fraction of dynamic sparse training, and AGP gradual pruning."""

from __future__ import annotations

import math
from collections.abc import Callable

from fedsparse.errors import ConfigError
from fedsparse.registry import Registry

DropSchedule = Callable[[int, int, float], float]

DROP_SCHEDULES: Registry[DropSchedule] = Registry("drop schedule")
"""`(t, t_end, alpha) -> fraction` of active weights to drop at step/round t; 0 from t_end on."""


def _check(t_end: int) -> None:
    if t_end <= 0:
        raise ConfigError(f"t_end must be > 0, got {t_end}")


@DROP_SCHEDULES.register("constant")
def constant(t: int, t_end: int, alpha: float) -> float:
    """alpha until t_end (the FedDST reference code's effective amount)."""
    _check(t_end)
    return alpha if t < t_end else 0.0


@DROP_SCHEDULES.register("cosine")
def cosine(t: int, t_end: int, alpha: float) -> float:
    """alpha / 2 * (1 + cos(pi t / t_end)) (RigL, FedDST)."""
    _check(t_end)
    return alpha / 2 * (1 + math.cos(math.pi * t / t_end)) if t < t_end else 0.0


@DROP_SCHEDULES.register("linear")
def linear(t: int, t_end: int, alpha: float) -> float:
    """alpha * (1 - t / t_end)."""
    _check(t_end)
    return alpha * (1 - t / t_end) if t < t_end else 0.0


def agp_density(
    step: int, start_step: int, end_step: int, final_density: float, initial_density: float = 1.0
) -> float:
    """Zhu & Gupta's automated gradual pruning, as a kept fraction:
    s_t = s_f + (s_i - s_f) * (1 - (t - t0) / (t_end - t0))^3, clamped to [t0, t_end]."""
    if end_step <= start_step:
        raise ConfigError(f"end_step ({end_step}) must be > start_step ({start_step})")
    if not 0.0 < final_density <= initial_density <= 1.0:
        raise ConfigError(
            "need 0 < final_density <= initial_density <= 1, "
            f"got {final_density}, {initial_density}"
        )
    progress = min(max((step - start_step) / (end_step - start_step), 0.0), 1.0)
    s_i, s_f = 1.0 - initial_density, 1.0 - final_density
    return 1.0 - (s_f + (s_i - s_f) * (1.0 - progress) ** 3)
