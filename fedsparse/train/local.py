"""`LocalTrainer`: masked SGD over in-memory tensors, with optional proximal term and augmentation."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from fedsparse.data import random_crop_flip
from fedsparse.sparse.mask import Mask
from fedsparse.sparse.masked_optim import MaskedOptimizer


def loss_fn(logits: torch.Tensor, y: torch.Tensor, double_softmax: bool = False) -> torch.Tensor:
    """Cross-entropy on logits; `double_softmax` reproduces the FedDST reference code's
    softmax-then-CrossEntropyLoss."""
    if double_softmax:
        logits = F.softmax(logits, dim=1)
    return F.cross_entropy(logits, y)


class LocalTrainer:
    """Trains `model` in place with SGD; weights outside `mask` stay exactly zero."""

    def __init__(self, model: nn.Module, mask: Mask | None, *, lr: float, momentum: float,
                 weight_decay: float, batch_size: int, proximal_mu: float = 0.0,
                 augment: bool = False, double_softmax: bool = False) -> None:
        self.model = model
        self.batch_size = batch_size
        self.augment = augment
        self.double_softmax = double_softmax
        self.proximal_mu = proximal_mu
        self._anchor = ([p.detach().clone() for p in model.parameters()]
                        if proximal_mu > 0 else [])
        self.last_batch: torch.Tensor | None = None
        sgd = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum,
                              weight_decay=weight_decay)
        self.optimizer = MaskedOptimizer(sgd, model, mask if mask is not None else Mask({}))

    def set_mask(self, mask: Mask) -> None:
        self.optimizer.set_mask(mask)

    def _loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        loss = loss_fn(self.model(x), y, self.double_softmax)
        if self.proximal_mu > 0:
            prox = sum(((p - a) ** 2).sum() for p, a in zip(self.model.parameters(), self._anchor))
            loss = loss + 0.5 * self.proximal_mu * prox
        return loss

    def train_epochs(self, x: torch.Tensor, y: torch.Tensor, epochs: int,
                     generator: torch.Generator,
                     before_step: Callable[[], None] | None = None,
                     order: torch.Tensor | None = None) -> float:
        """Run `epochs` passes, each in a fresh shuffled order (or in `order`, the same every
        epoch); returns the mean training loss (0.0 for no steps). The last minibatch's indices
        are kept in `last_batch`.

        `before_step`, when given, runs after each backward pass and before the optimizer step:
        the batch's dense loss gradient is in `.grad` (pruned coordinates included), and a mask
        it sets with `set_mask` already applies to that step.
        """
        self.model.train()
        total, steps = 0.0, 0
        for _ in range(epochs):
            epoch_order = torch.randperm(len(y), generator=generator) if order is None else order
            for start in range(0, len(y), self.batch_size):
                idx = epoch_order[start:start + self.batch_size]
                self.last_batch = idx
                xb = x[idx]
                if self.augment:
                    xb = random_crop_flip(xb, generator)
                self.optimizer.zero_grad()
                loss = self._loss(xb, y[idx])
                loss.backward()
                if before_step is not None:
                    before_step()
                self.optimizer.step()
                total += float(loss.detach())
                steps += 1
        return total / steps if steps else 0.0

    def gradients(self, x: torch.Tensor, y: torch.Tensor, names: list[str], over: str,
                  generator: torch.Generator) -> dict[str, torch.Tensor]:
        """Loss gradient w.r.t. `names` (dense, every coordinate) at the current weights, over
        `over`: "epoch" (one pass of the data), "batch" (one random batch of `batch_size`) or
        "last_batch" (the last minibatch trained on, as the FedDST reference code does)."""
        self.model.train()
        params = dict(self.model.named_parameters())
        self.model.zero_grad(set_to_none=True)
        if over in ("batch", "last_batch"):
            if over == "last_batch" and self.last_batch is not None:
                idx = self.last_batch
            else:
                idx = torch.randperm(len(y), generator=generator)[: self.batch_size]
            loss_fn(self.model(x[idx]), y[idx], self.double_softmax).backward()
        else:
            for start in range(0, len(y), self.batch_size):
                xb, yb = x[start:start + self.batch_size], y[start:start + self.batch_size]
                (loss_fn(self.model(xb), yb, self.double_softmax) * len(yb) / len(y)).backward()
        grads = {n: params[n].grad.detach().clone() for n in names}
        self.model.zero_grad(set_to_none=True)
        return grads
