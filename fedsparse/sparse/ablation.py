"""Layer-wise ablations of a pruning-at-initialisation mask (after Frankle et al., ICLR 2021).

- `shuffle`: keep each layer's kept count, but place the kept weights uniformly at random within
  the layer (within the allowed positions, when some are excluded, e.g. removed input columns);
- `reinit`: keep the mask, but give the kept weights fresh values from a new initialisation;
- `invert`: negate the criterion's scores, so the complement ranking is kept (the weights the
  criterion rates lowest).

All three only need torch; `sparse/initial_mask.py` applies them (config `mask_ablation`).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from fedsparse.sparse.mask import Mask

ABLATIONS = ("none", "shuffle", "reinit", "invert")


def invert_scores(scores: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """-score for every finite entry; -inf entries (outside a given mask) stay -inf."""
    return {n: torch.where(torch.isfinite(s), -s, s) for n, s in scores.items()}


def shuffle_within_layers(mask: Mask, generator: torch.Generator,
                          allowed: Mapping[str, torch.Tensor] | None = None) -> Mask:
    """Same kept count per layer, positions drawn uniformly among the allowed ones (all when
    `allowed` has no entry for the layer). Kept weights outside `allowed` are counted but moved."""
    out = {}
    for n, m in mask.items():
        flat = m.reshape(-1).cpu()
        where = (allowed[n].reshape(-1).cpu() if allowed is not None and n in allowed
                 else torch.ones_like(flat))
        slots = torch.nonzero(where).squeeze(1)
        count = min(int(flat.sum()), slots.numel())
        pick = slots[torch.randperm(slots.numel(), generator=generator)[:count]]
        new = torch.zeros_like(flat)
        new[pick] = True
        out[n] = new.reshape(m.shape).to(m.device)
    return Mask(out)


def reinit_kept(state: Mapping[str, torch.Tensor], mask: Mask,
                fresh: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`state` with the kept entries of every masked tensor replaced by `fresh`'s values (pruned
    entries keep theirs; they are zeroed by the mask anyway). Other tensors are unchanged."""
    out = dict(state)
    for n, m in mask.items():
        keep = m.to(state[n].device)
        out[n] = torch.where(keep, fresh[n].to(state[n].device, state[n].dtype), state[n])
    return out
