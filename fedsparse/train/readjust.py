"""A client's FedDST mask readjustment: prune by magnitude, regrow by gradient."""

from __future__ import annotations

import torch

from fedsparse.config import Config
from fedsparse.sparse.mask import Mask
from fedsparse.sparse.ops import prune_lowest, readjust, regrow_init
from fedsparse.train.local import LocalTrainer


@torch.no_grad()
def _reference_regrow(model: torch.nn.Module, pruned: Mask, growth: dict[str, torch.Tensor],
                      k: dict[str, int]) -> Mask:
    """The FedDST reference code's regrowth: top-k |grad| over ALL coordinates; an active weight
    it hits is reset to zero, so fewer than k new connections are made."""
    params = dict(model.named_parameters())
    out = {}
    for n, m in pruned.items():
        top = torch.topk(growth[n].reshape(-1), k[n]).indices  # on the weights' device
        flat = m.reshape(-1).clone()
        flat[top.to(flat.device)] = True
        params[n].view(-1)[top] = 0.0
        out[n] = flat.reshape(m.shape)
    return Mask(out)


def readjust_mask(trainer: LocalTrainer, x: torch.Tensor, y: torch.Tensor, mask: Mask,
                  fraction: float, cfg: Config, generator: torch.Generator) -> Mask:
    """Per layer, prune round(fraction * active) weights of smallest |w| and grow as many
    inactive ones of largest |dL/dw|, new weights set to zero. Updates the model's weights."""
    params = dict(trainer.model.named_parameters())
    grads = trainer.gradients(x, y, list(mask), cfg.readjust_gradient, generator)
    magnitude = {n: params[n].detach().abs() for n in mask}
    growth = {n: g.abs() for n, g in grads.items()}
    if cfg.regrow_from == "all":
        k = {n: round(fraction * int(m.sum())) for n, m in mask.items()}
        pruned = prune_lowest(mask, magnitude, k)
        regrow_init(trainer.model, mask, pruned)
        return _reference_regrow(trainer.model, pruned, growth, k)
    new = readjust(mask, magnitude, growth, fraction)
    regrow_init(trainer.model, mask, new, init="zero")
    return new
