"""Value codecs: float32 weights stored as float32, float16 or bfloat16 (uint16 bit patterns)."""

from __future__ import annotations

import numpy as np

from fedsparse.errors import ConfigError

STORAGE: dict[str, np.dtype] = {
    "float32": np.dtype(np.float32),
    "float16": np.dtype(np.float16),
    "bfloat16": np.dtype(np.uint16),
}
"""Allowed value dtypes and the numpy dtype each is sent as (which identifies the value dtype)."""


def check_value_dtype(dtype: str) -> str:
    """`dtype` itself if allowed; ConfigError listing the allowed names otherwise."""
    if dtype not in STORAGE:
        raise ConfigError(f"unknown value dtype '{dtype}'; allowed: {', '.join(STORAGE)}")
    return dtype


def float32_to_bfloat16_bits(values: np.ndarray) -> np.ndarray:
    """bfloat16 bit patterns (uint16) of float32 `values`, round-to-nearest-even; NaN stays NaN."""
    bits = values.view(np.uint32)
    rounded = (bits + (0x7FFF + ((bits >> 16) & 1))) >> 16
    return np.where(np.isnan(values), (bits >> 16) | 0x0040, rounded).astype(np.uint16)


def bfloat16_bits_to_float32(bits: np.ndarray) -> np.ndarray:
    """float32 values of bfloat16 bit patterns (exact)."""
    return (bits.astype(np.uint32) << 16).view(np.float32)


def encode_values(values: np.ndarray, dtype: str) -> np.ndarray:
    """A new flat array of `values` (cast to float32) in `dtype`'s storage; float32 is bit-exact."""
    check_value_dtype(dtype)
    flat = np.ascontiguousarray(values, dtype=np.float32).reshape(-1)
    if dtype == "bfloat16":
        return float32_to_bfloat16_bits(flat)
    return flat.astype(STORAGE[dtype])


def decode_values(arr: np.ndarray, dtype: str) -> np.ndarray:
    """float32 values of `arr`, which must hold `dtype`'s storage dtype (`arr` itself for
    float32)."""
    if arr.dtype != STORAGE[check_value_dtype(dtype)]:
        raise ValueError(f"{dtype} values must be stored as {STORAGE[dtype]}, got {arr.dtype}")
    if dtype == "bfloat16":
        return bfloat16_bits_to_float32(arr)
    return arr.astype(np.float32, copy=False)
