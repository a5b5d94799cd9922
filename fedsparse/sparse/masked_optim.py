"""`MaskedOptimizer`: keeps pruned weights exactly zero through any torch optimizer's steps."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from fedsparse.errors import ConfigError
from fedsparse.sparse.mask import Mask


class MaskedOptimizer:
    """Wraps `optimizer` so the weights pruned by `mask` stay exactly 0.0.

    Each `step` zeroes the gradients at pruned coordinates, steps, then multiplies the masked
    parameters by their mask. `set_mask` (also run at construction) zeroes the newly pruned weights
    and the optimizer's per-coordinate state there (momentum buffers, Adam moments), so no stale
    momentum or weight decay can move them; with zero gradient, zero weight and zero state, the
    state stays zero between mask changes.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, model: nn.Module, mask: Mask) -> None:
        self.optimizer = optimizer
        self._params = dict(model.named_parameters())
        self._pairs: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.set_mask(mask)

    @property
    def mask(self) -> Mask:
        return self._mask

    @property
    def param_groups(self) -> list[dict]:
        return self.optimizer.param_groups

    @torch.no_grad()
    def set_mask(self, mask: Mask) -> None:
        """Switch to `mask`: zero the pruned weights and their optimizer state."""
        missing = [n for n in mask if n not in self._params]
        if missing:
            raise ConfigError(f"mask names are not parameters of the model: {', '.join(missing)}")
        self._mask = mask
        self._pairs = []
        for name, m in mask.items():
            p = self._params[name]
            keep = m.to(device=p.device, dtype=p.dtype)
            self._pairs.append((p, keep))
            p.mul_(keep)
            for value in self.optimizer.state.get(p, {}).values():
                if torch.is_tensor(value) and value.shape == p.shape:
                    value.mul_(keep)

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    @torch.no_grad()
    def _mask_grads(self) -> None:
        for p, keep in self._pairs:
            if p.grad is not None:
                p.grad.mul_(keep)

    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor | None:
        if closure is not None:

            def masked_closure() -> torch.Tensor:
                with torch.enable_grad():
                    loss = closure()
                self._mask_grads()
                return loss

            loss = self.optimizer.step(masked_closure)
        else:
            self._mask_grads()
            loss = self.optimizer.step()
        with torch.no_grad():
            for p, keep in self._pairs:
                p.mul_(keep)
        return loss

    def state_dict(self) -> dict:
        return self.optimizer.state_dict()

    def load_state_dict(self, state: dict) -> None:
        """Load optimizer state, then zero it at the pruned coordinates of the current mask."""
        self.optimizer.load_state_dict(state)
        self.set_mask(self._mask)
