"""Gap representation of a mask, shared by the `index` and `golomb` codecs."""

from __future__ import annotations

import numpy as np


def gaps_of(mask: np.ndarray) -> np.ndarray:
    """Inactive coordinates skipped before each active one (int64): index - previous index - 1."""
    return np.diff(np.flatnonzero(mask), prepend=-1) - 1


def indices_of(gaps: np.ndarray) -> np.ndarray:
    """Inverse of `gaps_of`: the active indices (int64, increasing)."""
    return np.cumsum(gaps.astype(np.int64) + 1) - 1
