"""`POSITION_CODECS`: the registry of mask (position) codecs, and the checks they share."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from fedsparse.registry import Registry


class PositionCodec(Protocol):
    """Turns a 1-D bool mask into a self-describing uint8 buffer and back (`n` = mask length)."""

    @staticmethod
    def encode(mask: np.ndarray) -> np.ndarray: ...

    @staticmethod
    def decode(buf: np.ndarray, n: int) -> np.ndarray: ...


POSITION_CODECS: Registry[type[PositionCodec]] = Registry("position codec")


def check_mask(mask: np.ndarray) -> np.ndarray:
    """`mask` itself if it is a 1-D bool array; ValueError otherwise."""
    if not isinstance(mask, np.ndarray) or mask.dtype != np.bool_ or mask.ndim != 1:
        raise ValueError(f"mask must be a 1-D bool numpy array, got {type(mask).__name__} "
                         f"{getattr(mask, 'dtype', '')} {getattr(mask, 'shape', '')}")
    return mask


def check_buffer(buf: np.ndarray) -> np.ndarray:
    """`buf` itself if it is a 1-D uint8 array; ValueError otherwise."""
    if not isinstance(buf, np.ndarray) or buf.dtype != np.uint8 or buf.ndim != 1:
        raise ValueError(f"position buffer must be a 1-D uint8 array, got {type(buf).__name__} "
                         f"{getattr(buf, 'dtype', '')} {getattr(buf, 'shape', '')}")
    return buf


def mask_from_indices(indices: np.ndarray, n: int) -> np.ndarray:
    """A length-`n` bool mask, True at the sorted `indices`; ValueError if one is >= n."""
    if indices.size and indices[-1] >= n:
        raise ValueError(f"corrupt position buffer: index {int(indices[-1])} outside a mask of {n}")
    mask = np.zeros(n, dtype=bool)
    mask[indices] = True
    return mask
