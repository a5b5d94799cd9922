"""Tagged position buffers and the `auto` setting: 1 byte naming the codec, then its buffer.

`encode_positions(mask, codec)` tags the named codec's buffer, or for "auto" the smallest of all
registered codecs; `decode_positions` reads the tag, so the receiver needs only the mask length.
The tags are those the codecs are registered with (`POSITION_CODECS`).
"""

from __future__ import annotations

import numpy as np

from fedsparse.comm import bitmap, golomb, index_list  # noqa: F401 - register the codecs
from fedsparse.comm.registry import POSITION_CODECS, PositionCodec, check_buffer, check_mask
from fedsparse.errors import ConfigError

AUTO = "auto"


def codec_names() -> list[str]:
    """The allowed `codec` settings: "auto", then every registered codec."""
    return [AUTO, *POSITION_CODECS.names()]


def _check(codec: str) -> str:
    if codec != AUTO and codec not in POSITION_CODECS:
        raise ConfigError(f"unknown position codec '{codec}'; allowed: {', '.join(codec_names())}")
    return codec


def encode_positions(mask: np.ndarray, codec: str = AUTO) -> np.ndarray:
    """1 tag byte + `codec`'s buffer of the 1-D bool `mask`; "auto" takes the smallest codec
    (the lowest tag among equals)."""
    _check(codec)
    tags = POSITION_CODECS.tags()
    names = list(tags) if codec == AUTO else [codec]
    check_mask(mask)
    buffers = {name: POSITION_CODECS.get(name).encode(mask) for name in names}
    best = min(names, key=lambda name: buffers[name].size)
    return np.concatenate([np.array([tags[best]], dtype=np.uint8), buffers[best]])


def decode_positions(buf: np.ndarray, n: int) -> np.ndarray:
    """The length-`n` bool mask held in a tagged buffer."""
    if check_buffer(buf).size == 0:
        raise ValueError("corrupt position buffer: empty, no tag")
    return POSITION_CODECS.by_tag(int(buf[0])).decode(buf[1:], n)


class AutoCodec:
    """The `auto` setting as a codec: 1 + min(every registered codec's size) bytes."""

    @staticmethod
    def encode(mask: np.ndarray) -> np.ndarray:
        return encode_positions(mask, AUTO)

    @staticmethod
    def decode(buf: np.ndarray, n: int) -> np.ndarray:
        return decode_positions(buf, n)


def position_codec(codec: str) -> type[PositionCodec]:
    """The codec a `codec` setting names: `AutoCodec` for "auto", else the registered one."""
    return AutoCodec if _check(codec) == AUTO else POSITION_CODECS.get(codec)
