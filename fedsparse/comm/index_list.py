"""`index` position codec: delta-coded index list with one fixed byte width.

Layout: 1 byte `width` (1, 2, 4 or 8), then one little-endian unsigned `width`-byte gap per
active coordinate, gap = index - previous index - 1 (previous = -1 before the first), so the
width is the smallest that fits the largest gap. Fixed width (not LEB128) keeps both directions
a single numpy cast.
"""

from __future__ import annotations

import numpy as np

from fedsparse.comm.gaps import gaps_of, indices_of
from fedsparse.comm.registry import POSITION_CODECS, check_buffer, check_mask, mask_from_indices

HEADER_BYTES = 1
WIDTHS = (1, 2, 4, 8)


@POSITION_CODECS.register("index", tag=1)
class IndexCodec:
    """1 + width * (number of active coordinates) bytes."""

    @staticmethod
    def encode(mask: np.ndarray) -> np.ndarray:
        gaps = gaps_of(check_mask(mask))
        largest = int(gaps.max()) if gaps.size else 0
        width = next(w for w in WIDTHS if largest < 256**w)
        body = gaps.astype(f"<u{width}").view(np.uint8)
        return np.concatenate([np.array([width], dtype=np.uint8), body])

    @staticmethod
    def decode(buf: np.ndarray, n: int) -> np.ndarray:
        check_buffer(buf)
        width = int(buf[0]) if buf.size else 0
        if width not in WIDTHS or (buf.size - 1) % width:
            raise ValueError(f"corrupt index buffer: width {width}, {buf.size} bytes")
        gaps = np.frombuffer(buf[1:].tobytes(), dtype=f"<u{width}")
        return mask_from_indices(indices_of(gaps), n)
