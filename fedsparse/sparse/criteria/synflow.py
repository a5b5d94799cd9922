"""`synflow`: iterative synaptic flow pruning (Tanaka et al., NeurIPS 2020), data-free.

One scoring pass: on a private float64 eval-mode copy of the model, every parameter and buffer
replaced by its absolute value and clipping activations by ReLU, pruned weights zeroed, an all-ones
input of batch size 1, R = sum of the outputs, score = |w * dR/dw|. `synflow_mask` alternates
scoring and pruning over `iterations` steps with an exponential density schedule, which avoids
layer collapse.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.func import functional_call

from fedsparse.errors import ConfigError
from fedsparse.plugin_options import option
from fedsparse.sparse.criteria.gradients import finish, named_weights
from fedsparse.sparse.criteria.registry import CRITERIA, Batches
from fedsparse.sparse.mask import Mask

SCOPES = ("global", "local")


def _absolute_copy(model: nn.Module) -> nn.Module:
    """Float64 eval-mode copy with every parameter and float buffer replaced by its |value|.

    Clipping activations (ReLU6, Hardtanh) become ReLU: SynFlow needs a positively homogeneous
    network, and all-ones flow saturates a clip, zeroing the scores of every layer before it.
    """
    twin = copy.deepcopy(model).double().eval()
    for parent in list(twin.modules()):
        for child_name, child in list(parent.named_children()):
            if isinstance(child, nn.Hardtanh):
                setattr(parent, child_name, nn.ReLU())
    with torch.no_grad():
        for p in twin.parameters():
            p.abs_().requires_grad_(False)
        for b in twin.buffers():
            if b.is_floating_point():
                b.abs_()
    return twin


def _flow_scores(twin: nn.Module, abs_weights: Mapping[str, Tensor], mask: Mask,
                 input_shape: Sequence[int]) -> dict[str, Tensor]:
    """|w * dR/dw| for the masked absolute weights (float64)."""
    leaves = {n: (w * mask[n].to(w.device, w.dtype)).requires_grad_(True)
              for n, w in abs_weights.items()}
    device = next(iter(abs_weights.values())).device
    ones = torch.ones((1, *input_shape), dtype=torch.float64, device=device)
    flow = functional_call(twin, leaves, (ones,)).sum()
    grads = torch.autograd.grad(flow, list(leaves.values()), allow_unused=True)
    return {n: (leaves[n] * g).abs().detach() if g is not None else torch.zeros_like(leaves[n])
            for n, g in zip(leaves, grads)}


def _keep_top(scores: Mapping[str, Tensor], mask: Mask, counts: Mapping[str, int] | int) -> Mask:
    """Keep the `counts` highest-scoring active entries: one global count, or one per layer."""
    ranked = {n: s.masked_fill(~mask[n].to(s.device), float("-inf")) for n, s in scores.items()}
    if isinstance(counts, int):
        flat = torch.cat([s.flatten() for s in ranked.values()])
        kept = torch.zeros(flat.numel(), dtype=torch.bool, device=flat.device)
        kept[torch.topk(flat, counts, sorted=False).indices] = True
        parts = torch.split(kept, [s.numel() for s in ranked.values()])
        return Mask({n: part.view_as(ranked[n]) for n, part in zip(ranked, parts)})
    out = {}
    for n, s in ranked.items():
        kept = torch.zeros(s.numel(), dtype=torch.bool, device=s.device)
        kept[torch.topk(s.flatten(), counts[n], sorted=False).indices] = True
        out[n] = kept.view_as(s)
    return Mask(out)


def _layer_targets(names: list[str], density: float | Mapping[str, float], scope: str
                   ) -> float | dict[str, float]:
    """One global target, or one per layer; ConfigError for bad settings."""
    if isinstance(density, Mapping):
        missing = [n for n in names if n not in density]
        if missing:
            raise ConfigError(f"synflow: no target density for {', '.join(missing)}")
        targets: float | dict[str, float] = {n: float(density[n]) for n in names}
    elif scope not in SCOPES:
        raise ConfigError(f"synflow: unknown scope '{scope}'; allowed: {', '.join(SCOPES)}")
    else:
        targets = float(density) if scope == "global" else {n: float(density) for n in names}
    values = list(targets.values()) if isinstance(targets, dict) else [targets]
    if any(not 0.0 < v <= 1.0 for v in values):
        raise ConfigError(f"synflow: densities are kept fractions in (0, 1], got {density}")
    return targets


def _scheduled_count(active: int, size: int, target: float, frac: float) -> int:
    """Kept count after fraction `frac` of the exponential schedule from active/size to target."""
    d0 = active / size
    if target * size > active + 0.5:
        raise ConfigError(f"synflow: target density {target} exceeds the starting {d0:.4f}")
    return min(active, round(d0 * (target / d0) ** frac * size))


def _prune(twin: nn.Module, abs_weights: Mapping[str, Tensor], start: Mask,
           targets: float | dict[str, float], iterations: int,
           input_shape: Sequence[int]) -> Mask:
    """Alternate flow scoring and top-k pruning along the exponential schedule."""
    if iterations < 1:
        raise ConfigError(f"synflow: iterations must be >= 1, got {iterations}")
    current = start
    for step in range(1, iterations + 1):
        frac = step / iterations
        if isinstance(targets, dict):
            counts: int | dict[str, int] = {
                n: _scheduled_count(int(start[n].sum()), start[n].numel(), targets[n], frac)
                for n in start}
        else:
            counts = _scheduled_count(start.num_active(), start.numel(), targets, frac)
        current = _keep_top(_flow_scores(twin, abs_weights, current, input_shape), current, counts)
    return current


def _setup(model: nn.Module, names: list[str], mask: Mask | None
           ) -> tuple[nn.Module, dict[str, Tensor], Mask]:
    """The absolute twin, the float64 |weights| of `names`, and the starting mask beside them."""
    weights = named_weights(model, names)
    start = mask if mask is not None else Mask.ones(model, names)
    start = Mask({n: start[n].to(weights[n].device) for n in names})
    abs_weights = {n: w.detach().to(torch.float64).abs() for n, w in weights.items()}
    return _absolute_copy(model), abs_weights, start


def synflow_mask(model: nn.Module, names: list[str], density: float | Mapping[str, float],
                 input_shape: Sequence[int], iterations: int = 100, scope: str = "global",
                 mask: Mask | None = None) -> Mask:
    """Prune `names` to `density` (kept fraction) by SynFlow over `iterations` steps.

    `density` is one float with `scope` "global" (one threshold across layers) or "local" (the same
    fraction per layer), or a per-layer mapping (a layer-wise budget such as ERK). The density
    after step i is d0 * (d / d0) ** (i / iterations), d0 that of `mask` (all ones when None);
    pruned entries never return. `model` is not modified.
    """
    targets = _layer_targets(names, density, scope)
    twin, abs_weights, start = _setup(model, names, mask)
    return _prune(twin, abs_weights, start, targets, iterations, input_shape)


@dataclass(frozen=True)
class SynflowOptions:
    """Options of `synflow` (config `criterion_options`)."""

    iterations: int = option(100, "scoring/pruning steps of the iterative mask (1 = single-shot)",
                             lo=1, hi=100_000)


@CRITERIA.register("synflow", options=SynflowOptions)
def synflow_scores(model: nn.Module, names: list[str], batches: Batches | None,
                   mask: Mask | None = None, generator: torch.Generator | None = None,
                   density: float | Mapping[str, float] | None = None, iterations: int = 100,
                   scope: str = "global", input_shape: Sequence[int] | None = None
                   ) -> dict[str, Tensor]:
    """SynFlow scores; data-free (`batches`, when given, only supply the input shape).

    Without `density`: one scoring pass at `mask`. With `density`: runs `synflow_mask` and returns
    the scores of its final configuration (entries it pruned score -inf), so keeping the top
    `density` of them reproduces that mask.
    """
    if input_shape is None:
        if not batches:
            raise ConfigError("synflow needs `input_shape` (C, H, W) or a batch to infer it from")
        input_shape = tuple(batches[0][0].shape[1:])
    twin, abs_weights, final = _setup(model, names, mask)
    if density is not None:
        targets = _layer_targets(names, density, scope)
        final = _prune(twin, abs_weights, final, targets, iterations, input_shape)
    return finish(_flow_scores(twin, abs_weights, final, input_shape), final)
