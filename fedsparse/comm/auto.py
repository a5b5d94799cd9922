"""Tagged position buffers and the `auto` codec: 1 byte naming the codec, then that codec's buffer.

`encode_positions(mask, codec)` tags the named codec's buffer, or for "auto" the smallest of all
tagged codecs; `decode_positions` reads the tag, so the receiver needs only the mask length.
"""

from __future__ import annotations

import numpy as np

from fedsparse.comm.bitmap import BitmapCodec
from fedsparse.comm.golomb import GolombCodec
from fedsparse.comm.index_list import IndexCodec
from fedsparse.comm.registry import POSITION_CODECS, PositionCodec, check_buffer, check_mask
from fedsparse.errors import ConfigError

TAGS: dict[str, int] = {"bitmap": 0, "index": 1, "golomb": 2}
"""Wire tag of each codec; never renumber (buffers in checkpoints and logs carry them)."""
_BY_TAG: dict[int, type[PositionCodec]] = {0: BitmapCodec, 1: IndexCodec, 2: GolombCodec}


def encode_positions(mask: np.ndarray, codec: str = "auto") -> np.ndarray:
    """1 tag byte + `codec`'s buffer of the 1-D bool `mask`; "auto" takes the smallest codec."""
    POSITION_CODECS.get(codec)
    if codec != "auto" and codec not in TAGS:
        tagged = ", ".join(["auto", *TAGS])
        raise ConfigError(f"position codec '{codec}' has no wire tag; tagged: {tagged}")
    names = list(TAGS) if codec == "auto" else [codec]
    check_mask(mask)
    buffers = {name: _BY_TAG[TAGS[name]].encode(mask) for name in names}
    best = min(names, key=lambda name: buffers[name].size)
    return np.concatenate([np.array([TAGS[best]], dtype=np.uint8), buffers[best]])


def decode_positions(buf: np.ndarray, n: int) -> np.ndarray:
    """The length-`n` bool mask held in a tagged buffer."""
    if check_buffer(buf).size == 0 or int(buf[0]) not in _BY_TAG:
        raise ValueError(f"corrupt position buffer: tag {buf[:1].tolist()}, known {list(_BY_TAG)}")
    return _BY_TAG[int(buf[0])].decode(buf[1:], n)


@POSITION_CODECS.register("auto")
class AutoCodec:
    """1 + min(bitmap, index, golomb) bytes."""

    @staticmethod
    def encode(mask: np.ndarray) -> np.ndarray:
        return encode_positions(mask, "auto")

    @staticmethod
    def decode(buf: np.ndarray, n: int) -> np.ndarray:
        return decode_positions(buf, n)
