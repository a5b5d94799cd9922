"""`Mask`: boolean keep-masks keyed by parameter name."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np
import torch
from torch import nn


class Mask(Mapping[str, torch.Tensor]):
    """Named boolean tensors (True = weight kept). Parameters not listed are dense."""

    def __init__(self, masks: Mapping[str, torch.Tensor]) -> None:
        self._m: dict[str, torch.Tensor] = {}
        for name, m in masks.items():
            if m.dtype != torch.bool:
                raise TypeError(f"mask '{name}' must be bool, got {m.dtype}")
            self._m[name] = m

    @classmethod
    def ones(cls, model: nn.Module, names: list[str]) -> Mask:
        params = dict(model.named_parameters())
        return cls({n: torch.ones_like(params[n], dtype=torch.bool) for n in names})

    @classmethod
    def from_model(cls, model: nn.Module, names: list[str]) -> Mask:
        """The mask of the currently non-zero entries of `names`."""
        params = dict(model.named_parameters())
        return cls({n: params[n].detach() != 0 for n in names})

    def __getitem__(self, name: str) -> torch.Tensor:
        return self._m[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._m)

    def __len__(self) -> int:
        return len(self._m)

    def numel(self) -> int:
        return sum(m.numel() for m in self._m.values())

    def num_active(self) -> int:
        return sum(int(m.sum()) for m in self._m.values())

    def density(self) -> float:
        """Kept fraction over all masked weights."""
        total = self.numel()
        return self.num_active() / total if total else 1.0

    def layer_densities(self) -> dict[str, float]:
        return {n: float(m.float().mean()) for n, m in self._m.items()}

    def to(self, device: torch.device | str) -> Mask:
        return Mask({n: m.to(device) for n, m in self._m.items()})

    def clone(self) -> Mask:
        return Mask({n: m.clone() for n, m in self._m.items()})

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Mask) or set(self) != set(other):
            return False
        return all(torch.equal(self[n], other[n].to(self[n].device)) for n in self)

    __hash__ = None  # type: ignore[assignment]

    def union(self, other: Mask) -> Mask:
        return Mask({n: self[n] | other[n] for n in self})

    def changed(self, other: Mask) -> int:
        """Number of coordinates whose state differs from `other`."""
        return sum(int((self[n] ^ other[n]).sum()) for n in self)

    @torch.no_grad()
    def apply(self, model: nn.Module) -> None:
        """Zero the pruned weights of `model` in place."""
        params = dict(model.named_parameters())
        for n, m in self._m.items():
            params[n].mul_(m.to(params[n].device, params[n].dtype))

    def save(self, path: str | Path) -> None:
        """Write as .npz of packed bits (no pickle)."""
        arrays: dict[str, np.ndarray] = {}
        for i, (n, m) in enumerate(self._m.items()):
            arrays[f"bits{i}"] = np.packbits(m.cpu().numpy().ravel())
            arrays[f"shape{i}"] = np.asarray(m.shape, dtype=np.int64)
        arrays["names"] = np.asarray(list(self._m), dtype=np.str_)
        with open(path, "wb") as f:
            np.savez(f, **arrays)

    @classmethod
    def load(cls, path: str | Path) -> Mask:
        with np.load(path, allow_pickle=False) as z:
            names = [str(s) for s in z["names"]]
            out = {}
            for i, n in enumerate(names):
                shape = tuple(int(s) for s in z[f"shape{i}"])
                count = int(np.prod(shape))
                bits = np.unpackbits(z[f"bits{i}"], count=count).astype(bool)
                out[n] = torch.from_numpy(bits.reshape(shape))
        return cls(out)

    def __repr__(self) -> str:
        return f"Mask({len(self)} tensors, density={self.density():.4f})"
