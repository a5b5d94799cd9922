"""`POSITION_CODECS`: the registry of mask (position) codecs with their wire tags, and the checks
they share."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np

from fedsparse.registry import Registry


class PositionCodec(Protocol):
    """Turns a 1-D bool mask into a self-describing uint8 buffer and back (`n` = mask length)."""

    @staticmethod
    def encode(mask: np.ndarray) -> np.ndarray: ...

    @staticmethod
    def decode(buf: np.ndarray, n: int) -> np.ndarray: ...


class PositionCodecs(Registry[type[PositionCodec]]):
    """Position codecs by name, each registered with its wire tag: the byte naming it at the head
    of a tagged buffer (`auto.py`). Never renumber a tag: checkpoints and logs hold them."""

    def __init__(self) -> None:
        super().__init__("position codec")
        self._by_tag: dict[int, str] = {}

    def register(self, name: str, options: type | None = None, *, tag: int | None = None
                 ) -> Callable[[type[PositionCodec]], type[PositionCodec]]:
        """Decorator registering a codec as `name` with wire `tag` (a byte no other codec has)."""
        if tag is None or not 0 <= tag <= 255:
            raise ValueError(f"position codec '{name}' needs a wire tag in 0..255, got {tag!r}")
        if tag in self._by_tag:
            raise ValueError(f"position codecs '{self._by_tag[tag]}' and '{name}' share tag {tag}")
        add = super().register(name, options)

        def deco(codec: type[PositionCodec]) -> type[PositionCodec]:
            add(codec)
            self._by_tag[tag] = name
            return codec

        return deco

    def tags(self) -> dict[str, int]:
        """Each codec's wire tag, by name, in tag order."""
        return {name: tag for tag, name in sorted(self._by_tag.items())}

    def by_tag(self, tag: int) -> type[PositionCodec]:
        """The codec whose wire tag is `tag`; ValueError (a corrupt buffer) if none is."""
        if tag not in self._by_tag:
            raise ValueError(f"corrupt position buffer: tag {tag}, known {sorted(self._by_tag)}")
        return self.get(self._by_tag[tag])


POSITION_CODECS = PositionCodecs()


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
