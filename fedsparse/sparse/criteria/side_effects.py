"""`no_side_effects`: run scoring code on a model and leave its modes and buffers as they were."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


@contextmanager
def no_side_effects(model: nn.Module, batchnorm_train: bool) -> Iterator[None]:
    """Inside: dropout off, batch norm in train mode (batch statistics) iff `batchnorm_train`.

    On exit every module's train/eval flag and every buffer (BN running statistics) are restored.
    Parameters and `.grad` are not touched here: criteria take gradients with `torch.autograd.grad`.
    """
    modes = {m: m.training for m in model.modules()}
    buffers = {name: b.detach().clone() for name, b in model.named_buffers()}
    model.eval()
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._NormBase):
            m.train(batchnorm_train)
    try:
        yield
    finally:
        with torch.no_grad():
            for name, b in model.named_buffers():
                b.copy_(buffers[name])
        for m, training in modes.items():
            m.training = training
