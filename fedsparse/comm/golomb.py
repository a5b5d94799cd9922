"""`golomb` position codec: Golomb-Rice coded gaps of the rarer symbol, two bit streams.

Layout (all bit streams most significant bit first, each padded with zeros to whole bytes):
  byte 0      flags: bits 0-5 = Rice parameter k, bit 7 = 1 if the *inactive* coordinates are coded
  bytes 1-4   m = number of coded coordinates (uint32, little endian)
  unary       for each gap g (see `gaps.py`), g >> k zeros then a terminating one
  remainders  for each gap, its low k bits (m * k bits)
The length of the unary stream is not stored: it is what remains after the header and the
ceil(m*k/8) remainder bytes. Coding the rarer symbol (the complement when density > 1/2) keeps the
cost near n * H(d) on both sides of d = 1/2; k is the cheapest of the three values around
ceil(log2(ln 2 * mean gap)), found by counting the exact stream lengths.
"""

from __future__ import annotations

import math
import struct

import numpy as np

from fedsparse.comm.gaps import gaps_of, indices_of
from fedsparse.comm.registry import POSITION_CODECS, check_buffer, check_mask, mask_from_indices

HEADER = struct.Struct("<BI")
HEADER_BYTES = HEADER.size
_COMPLEMENT = 0x80
_K_BITS = 0x3F


def stream_bits(gaps: np.ndarray, k: int) -> tuple[int, int]:
    """(unary bits, remainder bits) of Rice-coding `gaps` with parameter `k`."""
    return int(gaps.size + np.sum(gaps >> k)), int(gaps.size * k)


def rice_parameter(gaps: np.ndarray) -> int:
    """The k in {guess - 1, guess, guess + 1} with the fewest coded bits (0 for no gaps)."""
    scale = math.log(2) * float(gaps.mean()) if gaps.size else 0.0
    guess = math.ceil(math.log2(scale)) if scale > 1 else 0
    return min(range(max(0, guess - 1), guess + 2), key=lambda k: sum(stream_bits(gaps, k)))


@POSITION_CODECS.register("golomb")
class GolombCodec:
    """HEADER_BYTES + ceil(unary bits / 8) + ceil(m * k / 8) bytes."""

    @staticmethod
    def encode(mask: np.ndarray) -> np.ndarray:
        check_mask(mask)
        if mask.size >= 2**32:
            raise ValueError(f"golomb codec needs fewer than 2**32 entries, got {mask.size}")
        complement = 2 * int(np.count_nonzero(mask)) > mask.size
        gaps = gaps_of(~mask if complement else mask)
        k = rice_parameter(gaps)
        quotients = gaps >> k
        unary = np.zeros(gaps.size + int(quotients.sum()), dtype=bool)
        unary[np.cumsum(quotients + 1) - 1] = True
        remainders = (gaps[:, None] >> np.arange(k - 1, -1, -1)) & 1
        header = HEADER.pack(k | (_COMPLEMENT if complement else 0), gaps.size)
        return np.concatenate([
            np.frombuffer(header, dtype=np.uint8),
            np.packbits(unary),
            np.packbits(remainders.astype(bool)),
        ])

    @staticmethod
    def decode(buf: np.ndarray, n: int) -> np.ndarray:
        if check_buffer(buf).size < HEADER_BYTES:
            raise ValueError(f"corrupt golomb buffer: {buf.size} bytes, shorter than its header")
        flags, m = HEADER.unpack(buf[:HEADER_BYTES].tobytes())
        k = flags & _K_BITS
        unary_end = buf.size - -(-m * k // 8)
        if flags & ~(_K_BITS | _COMPLEMENT) or unary_end < HEADER_BYTES:
            raise ValueError(f"corrupt golomb buffer: flags {flags:#x}, m={m}, {buf.size} bytes")
        ends = np.flatnonzero(np.unpackbits(buf[HEADER_BYTES:unary_end]).view(bool))
        if ends.size != m:
            raise ValueError(f"corrupt golomb buffer: {ends.size} unary codes, header says {m}")
        gaps = (np.diff(ends, prepend=-1) - 1) << k
        if k:
            fields = np.unpackbits(buf[unary_end:], count=m * k).reshape(m, k)
            gaps |= fields @ (np.int64(1) << np.arange(k - 1, -1, -1))
        coded = mask_from_indices(indices_of(gaps), n)
        return ~coded if flags & _COMPLEMENT else coded
