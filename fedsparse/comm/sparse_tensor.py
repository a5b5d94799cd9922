"""Tensor-level API: a dense tensor and its mask <-> the arrays sent over the wire.

The arrays are `{"values": ...}` (the entries at the mask's active coordinates, C order, in the
value dtype's storage) plus `"positions"` (a tagged position buffer, see `auto.py`) unless the
receiver already holds the mask. No mask means a dense tensor: all values, no positions.
"""

from __future__ import annotations

import math

import numpy as np

from fedsparse.comm.auto import decode_positions, encode_positions
from fedsparse.comm.registry import POSITION_CODECS
from fedsparse.comm.values import check_value_dtype, decode_values, encode_values, value_dtype_of

VALUES = "values"
POSITIONS = "positions"


def encode_sparse(
    dense: np.ndarray,
    mask: np.ndarray | None,
    codec: str = "auto",
    value_dtype: str = "float32",
    send_positions: bool = True,
) -> dict[str, np.ndarray]:
    """The arrays carrying `dense` restricted to the bool `mask` (same shape; None = dense)."""
    POSITION_CODECS.get(codec)
    check_value_dtype(value_dtype)
    dense = np.asarray(dense)
    if mask is None:
        return {VALUES: encode_values(dense, value_dtype)}
    if mask.dtype != np.bool_ or mask.shape != dense.shape:
        raise ValueError(f"mask must be bool of shape {dense.shape}, got {mask.dtype} {mask.shape}")
    flat = mask.reshape(-1)
    arrays = {VALUES: encode_values(dense.reshape(-1)[flat], value_dtype)}
    if send_positions:
        arrays[POSITIONS] = encode_positions(flat, codec)
    return arrays


def decode_sparse(
    arrays: dict[str, np.ndarray], shape: tuple[int, ...], mask: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(dense float32 tensor, bool mask) of `shape` from `arrays`.

    The mask comes from `arrays["positions"]` if sent, else from `mask`, else it is all True.
    """
    shape = tuple(shape)
    n = math.prod(shape)
    values = arrays[VALUES]
    if POSITIONS in arrays:
        mask = decode_positions(arrays[POSITIONS], n).reshape(shape)
    elif mask is None:
        mask = np.ones(shape, dtype=bool)
    elif mask.dtype != np.bool_ or mask.shape != shape:
        raise ValueError(f"mask must be bool of shape {shape}, got {mask.dtype} {mask.shape}")
    n_active = int(np.count_nonzero(mask))
    if values.size != n_active:
        raise ValueError(f"{values.size} values sent for a mask with {n_active} active entries")
    dense = np.zeros(shape, dtype=np.float32)
    dense[mask] = decode_values(values.reshape(-1), value_dtype_of(values))
    return dense, mask
