"""`golomb` position codec: Golomb-Rice coded gaps of the rarer symbol, two bit streams.

Layout (all bit streams most significant bit first, each padded with zeros to whole bytes):
  byte 0      flags: bits 0-5 = Rice parameter k, bit 7 = 1 if the *inactive* coordinates are coded
  bytes 1-4   m = number of coded coordinates (uint32, little endian)
  unary       for each gap g (see `gaps.py`), g >> k zeros then a terminating one
  remainders  for each gap, its low k bits (m * k bits)
The length of the unary stream is not stored: it is what remains after the header and the
ceil(m*k/8) remainder bytes. Coding the rarer symbol (the complement when density > 1/2) keeps the
cost near n * H(d) on both sides of d = 1/2. k = 0 when ln 2 * mean gap <= 1 (coded density
above about 0.41), where the unary stream is simply the coded bits up to the last coded one;
otherwise k is the cheapest of the three values around ceil(log2(ln 2 * mean gap)), by exact
stream lengths.
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


def rice_guess(n_coded: int, gap_sum: int) -> int:
    """max(0, ceil(log2(ln 2 * mean gap))): the Rice parameter matching a geometric gap law."""
    scale = math.log(2) * gap_sum / n_coded if n_coded else 0.0
    return math.ceil(math.log2(scale)) if scale > 1 else 0


def rice_parameter(gaps: np.ndarray, guess: int) -> int:
    """The k in {guess - 1, guess, guess + 1} with the fewest coded bits."""
    return min(range(max(0, guess - 1), guess + 2), key=lambda k: sum(stream_bits(gaps, k)))


@POSITION_CODECS.register("golomb", tag=2)
class GolombCodec:
    """HEADER_BYTES + ceil(unary bits / 8) + ceil(m * k / 8) bytes."""

    @staticmethod
    def encode(mask: np.ndarray) -> np.ndarray:
        check_mask(mask)
        if mask.size >= 2**32:
            raise ValueError(f"golomb codec needs fewer than 2**32 entries, got {mask.size}")
        m = int(np.count_nonzero(mask))
        complement = 2 * m > mask.size
        coded = ~mask if complement else mask
        m = mask.size - m if complement else m
        end = mask.size - int(np.argmax(coded[::-1])) if m else 0  # one past the last coded index
        k = rice_guess(m, end - m)
        if k == 0:
            unary, remainders = coded[:end], np.zeros(0, dtype=bool)
        else:
            gaps = gaps_of(coded)
            k = rice_parameter(gaps, k)
            quotients = gaps >> k
            unary = np.zeros(m + int(quotients.sum()), dtype=bool)
            unary[np.cumsum(quotients + 1) - 1] = True
            remainders = ((gaps[:, None] >> np.arange(k - 1, -1, -1)) & 1).astype(bool)
        header = HEADER.pack(k | (_COMPLEMENT if complement else 0), m)
        return np.concatenate([
            np.frombuffer(header, dtype=np.uint8), np.packbits(unary), np.packbits(remainders)
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
        unary = np.unpackbits(buf[HEADER_BYTES:unary_end]).view(bool)
        if (codes := int(np.count_nonzero(unary))) != m:
            raise ValueError(f"corrupt golomb buffer: {codes} unary codes, header says {m}")
        if k == 0:  # the unary stream is the coded bits themselves, zero-padded
            if unary[n:].any():
                raise ValueError(f"corrupt golomb buffer: a coded index lies outside a mask of {n}")
            coded = np.zeros(n, dtype=bool)
            coded[: min(n, unary.size)] = unary[:n]
        else:
            gaps = (np.diff(np.flatnonzero(unary), prepend=-1) - 1) << k
            fields = np.unpackbits(buf[unary_end:], count=m * k).reshape(m, k)
            gaps |= fields @ (np.int64(1) << np.arange(k - 1, -1, -1))
            coded = mask_from_indices(indices_of(gaps), n)
        return ~coded if flags & _COMPLEMENT else coded
