"""A client's FedDST mask readjustment: prune by magnitude, regrow by the configured growth rule."""

from __future__ import annotations

import torch

from fedsparse.config import Config
from fedsparse.sparse.mask import Mask
from fedsparse.sparse.ops import regrow_init
from fedsparse.sparse.prune_grow import RuleInputs, readjust
from fedsparse.train.local import LocalTrainer


def readjust_mask(trainer: LocalTrainer, x: torch.Tensor, y: torch.Tensor, mask: Mask,
                  fraction: float, cfg: Config, generator: torch.Generator) -> Mask:
    """Per layer, prune round(fraction * active) weights of smallest |w| and grow as many by
    `cfg.readjust.growth` (default: largest |dL/dw| over `cfg.readjust.readjust_gradient`), new weights set to zero.
    With `regrow_from=all` (the reference code) growth ranks all coordinates and an active weight
    it hits is reset to zero. Updates the model's weights."""
    model = trainer.model
    inputs = RuleInputs(
        weights=dict(model.named_parameters()), model=model, generator=generator,
        loss_gradients=lambda: trainer.gradients(x, y, list(mask), cfg.readjust.readjust_gradient,
                                                 generator))
    step = readjust(mask, inputs, fraction, grow=cfg.readjust.growth, regrow_from=cfg.readjust.regrow_from)
    if cfg.readjust.regrow_from == "all":
        regrow_init(model, mask, step.pruned)
        with torch.no_grad():
            params = dict(model.named_parameters())
            for n, hit in step.grown.items():
                params[n].masked_fill_(hit.to(params[n].device), 0.0)
    else:
        regrow_init(model, mask, step.mask, init="zero")
    return step.mask
