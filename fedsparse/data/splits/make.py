"""`make_split`: the checked, seeded entry point to every registered split."""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from fedsparse.data.splits.client_split import ClientSplit
from fedsparse.data.splits.registry import SPLITS
from fedsparse.errors import ConfigError


def split_params(name: str) -> dict[str, Any]:
    """The parameters split `name` accepts, with their defaults."""
    signature = inspect.signature(SPLITS.get(name))
    return {p.name: p.default for p in signature.parameters.values() if p.kind is p.KEYWORD_ONLY}


def make_split(
    name: str, train_labels: np.ndarray, test_labels: np.ndarray, num_clients: int, seed: int, **params: Any
) -> ClientSplit:
    """Split train (and test) indices over `num_clients` clients with split `name` (see `SPLITS.names()`).

    Deterministic in (seed, params). Unknown names or parameters and out-of-range values raise
    ConfigError naming the setting and the allowed values, before any splitting.
    """
    fn = SPLITS.get(name)
    allowed = split_params(name)
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ConfigError(
            f"split '{name}' has no parameter {', '.join(unknown)}; allowed: {', '.join(allowed) or 'none'}"
        )
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"split seed must be an integer >= 0, got {seed!r}")
    return fn(train_labels, test_labels, num_clients, np.random.default_rng(seed), **params)
