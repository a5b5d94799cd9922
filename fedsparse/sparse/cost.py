"""Parameter and multiply-accumulate (MAC) counts of a masked model, per input image.

Counted over the Conv/Linear layers (biases and norms add their parameters but no MACs):
- `params_total`: every parameter of the model; `params_active`: the same with masked tensors
  counted by their kept entries only (pruned weights and removed inputs do not count);
- `macs_dense`: MACs of the dense model; `macs_sparse`: only kept weights multiply (a weight of
  a conv layer is used once per output position);
- `macs_inputs_removed`: the dense model with the first layer's removed inputs physically taken
  out (its weight shrunk to the kept input slices), the rest dense: the induced-feature-selection
  gain alone;
- `inputs_total` / `inputs_kept`: input slices (Linear columns, conv input channels) of the first
  Conv/Linear layer, and how many hold at least one kept weight.
"""

from __future__ import annotations

import torch
from torch import nn

from fedsparse.sparse.input_features import kept_inputs
from fedsparse.sparse.mask import Mask

_LAYERS = (nn.modules.conv._ConvNd, nn.Linear)


def output_positions(model: nn.Module, input_shape: tuple[int, ...]) -> dict[str, int]:
    """Output positions per sample of every Conv/Linear weight (1 for Linear on flat inputs): the
    uses of one of its weights per sample."""
    found: dict[str, int] = {}
    hooks = []
    for prefix, module in model.named_modules():
        if isinstance(module, _LAYERS):
            name = f"{prefix}.weight" if prefix else "weight"

            def hook(mod: nn.Module, _inp: object, out: torch.Tensor, name: str = name) -> None:
                channels = mod.out_channels if isinstance(mod, nn.modules.conv._ConvNd) else mod.out_features
                found[name] = out[0].numel() // channels

            hooks.append(module.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        with torch.no_grad():
            model(torch.zeros((1, *input_shape), device=device))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return found


def model_cost(model: nn.Module, mask: Mask | None, input_shape: tuple[int, ...]) -> dict[str, int]:
    """The counts of the module docstring for `model` under `mask` (None = dense)."""
    mask = mask if mask is not None else Mask({})
    positions = output_positions(model, input_shape)
    params = dict(model.named_parameters())
    total = sum(p.numel() for p in params.values())
    active = sum(int(mask[n].sum()) if n in mask else p.numel() for n, p in params.items())
    layers = list(positions)
    first = layers[0] if layers else None
    out = {"params_total": total, "params_active": active, "macs_dense": 0, "macs_sparse": 0,
           "macs_inputs_removed": 0, "inputs_total": 0, "inputs_kept": 0}
    for n in layers:
        w = params[n]
        kept = int(mask[n].sum()) if n in mask else w.numel()
        out["macs_dense"] += w.numel() * positions[n]
        out["macs_sparse"] += kept * positions[n]
        if n == first:
            m = mask[n] if n in mask else torch.ones_like(w, dtype=torch.bool)
            n_in = w.shape[1]
            k = kept_inputs(m)
            out["inputs_total"], out["inputs_kept"] = n_in, k
            out["macs_inputs_removed"] += w.numel() // n_in * k * positions[n]
        else:
            out["macs_inputs_removed"] += w.numel() * positions[n]
    return out
