"""`bitmap` position codec: one bit per coordinate (np.packbits), no header."""

from __future__ import annotations

import numpy as np

from fedsparse.comm.registry import POSITION_CODECS, check_buffer, check_mask

HEADER_BYTES = 0
"""The length `n` is known to the receiver, so the bitmap needs no header: ceil(n/8) bytes."""


@POSITION_CODECS.register("bitmap", tag=0)
class BitmapCodec:
    """ceil(n/8) bytes, most significant bit first."""

    @staticmethod
    def encode(mask: np.ndarray) -> np.ndarray:
        return np.packbits(check_mask(mask))

    @staticmethod
    def decode(buf: np.ndarray, n: int) -> np.ndarray:
        if check_buffer(buf).size != -(-n // 8):
            raise ValueError(f"bitmap of {buf.size} bytes cannot hold a mask of {n}")
        return np.unpackbits(buf, count=n).astype(bool)
