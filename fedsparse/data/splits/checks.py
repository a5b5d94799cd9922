"""Parameter checks shared by the splits; each raises ConfigError naming the setting and its allowed range."""

from __future__ import annotations

import math
import numbers

import numpy as np

from fedsparse.errors import ConfigError, DataError


def positive_int(split: str, setting: str, value: object, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ConfigError(f"split '{split}': {setting} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def positive_float(split: str, setting: str, value: object) -> float:
    real = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not real or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"split '{split}': {setting} must be a finite number > 0, got {value!r}")
    return float(value)


def choice(split: str, setting: str, value: object, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ConfigError(f"split '{split}': {setting} must be one of {', '.join(allowed)}; got {value!r}")
    return str(value)


def at_most(split: str, needed: str, count: int, available: int, allowed: str) -> None:
    """ConfigError unless `count` (the `needed` quantity) <= `available`; `allowed` states the valid range."""
    if count > available:
        raise ConfigError(
            f"split '{split}': {needed} = {count} but only {available} exist; allowed: {allowed}"
        )


def labels(split: str, setting: str, value: object) -> np.ndarray:
    """A non-empty 1-D array of non-negative integer labels."""
    array = np.asarray(value)
    if array.ndim != 1 or array.size == 0 or not np.issubdtype(array.dtype, np.integer) or array.min() < 0:
        raise DataError(f"split '{split}': {setting} must be a non-empty 1-D array of integer labels >= 0")
    return array.astype(np.int64, copy=False)


def common(
    split: str, train_labels: object, test_labels: object, num_clients: object, shared: bool = False
) -> tuple[np.ndarray, np.ndarray, int]:
    """Checked (train_labels, test_labels, num_clients); at most one client per train image
    unless clients may share images (`shared`)."""
    train = labels(split, "train_labels", train_labels)
    test = labels(split, "test_labels", test_labels)
    clients = positive_int(split, "num_clients", num_clients)
    if not shared:
        at_most(
            split, "num_clients (train images needed, one per client)", clients, len(train),
            f"num_clients <= {len(train)}",
        )
    return train, test, clients


def num_classes(train_labels: np.ndarray, test_labels: np.ndarray) -> int:
    return int(max(train_labels.max(), test_labels.max())) + 1
