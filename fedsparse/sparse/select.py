"""Turn per-weight scores into a keep-mask: scope (global / layer), budget and granularity.

Ties are broken deterministically: among equal scores the lower flat index (and, globally, the
earlier layer) wins.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch

from fedsparse.errors import ConfigError
from fedsparse.registry import Registry
from fedsparse.sparse.budgets import layer_budget
from fedsparse.sparse.mask import Mask

GroupDims = Callable[[str, torch.Size], tuple[int, ...]]

GRANULARITIES: Registry[GroupDims] = Registry("granularity")
"""Each granularity names the dims that index a group; scores are summed over the other dims and
whole groups are kept or pruned."""

SCOPES = ("global", "layer")


@GRANULARITIES.register("unstructured")
def _unstructured(name: str, shape: torch.Size) -> tuple[int, ...]:
    return tuple(range(len(shape)))


@GRANULARITIES.register("channel")
def _channel(name: str, shape: torch.Size) -> tuple[int, ...]:
    """Output channels / filters / Linear rows."""
    return (0,)


@GRANULARITIES.register("input")
def _input(name: str, shape: torch.Size) -> tuple[int, ...]:
    """Input features: Linear columns, conv input-channel slices."""
    if len(shape) < 2:
        raise ConfigError(f"granularity 'input' needs >= 2-D weights; '{name}' is {tuple(shape)}")
    return (1,)


def _group_scores(scores: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    """Sum `scores` over the dims not in `dims`; flattened, one entry per group."""
    other = [d for d in range(scores.dim()) if d not in dims]
    return (scores.sum(dim=other) if other else scores).reshape(-1)


def _expand(keep: torch.Tensor, shape: torch.Size, dims: tuple[int, ...]) -> torch.Tensor:
    """Group keep-flags (flat) back to a full bool mask of `shape`."""
    view = [shape[d] if d in dims else 1 for d in range(len(shape))]
    return keep.reshape(view).expand(shape).clone()


def _top(values: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the k largest values, ties to the lower index."""
    return torch.sort(values, descending=True, stable=True).indices[:k]


def select_mask(
    scores: dict[str, torch.Tensor],
    density: float,
    scope: str = "layer",
    budget: str = "uniform",
    granularity: str = "unstructured",
    higher_is_better: bool = True,
    counts: Mapping[str, int] | None = None,
) -> Mask:
    """Keep the best-scoring fraction `density` of the weights.

    scope "layer": per-layer kept counts from `budget`, or `counts` when given (a method's own
    per-layer counts; `density` is then unused); scope "global": one ranking across all
    layers (`budget` unused), but every layer keeps at least its best group. Unstructured selection
    is exact; structured granularities keep whole groups, as many as best match the weight count.
    """
    if scope not in SCOPES:
        raise ConfigError(f"unknown scope '{scope}'; allowed: {', '.join(SCOPES)}")
    group_dims = GRANULARITIES.get(granularity)
    if not 0.0 < density <= 1.0:
        raise ConfigError(f"density must be in (0, 1], got {density}")
    dims = {n: group_dims(n, s.shape) for n, s in scores.items()}
    groups = {
        n: _group_scores(s.detach().float() if higher_is_better else -s.detach().float(), dims[n])
        for n, s in scores.items()
    }
    group_size = {n: scores[n].numel() // max(g.numel(), 1) for n, g in groups.items()}
    if scope == "layer":
        kept = dict(counts) if counts is not None else layer_budget(
            budget, {n: s.shape for n, s in scores.items()}, density)
        keep = {}
        for n, g in groups.items():
            count = min(max(round(kept[n] / group_size[n]), 1), g.numel()) if g.numel() else 0
            flags = torch.zeros(g.numel(), dtype=torch.bool, device=g.device)
            flags[_top(g, count)] = True
            keep[n] = flags
    else:
        keep = _select_global(groups, group_size, density)
    return Mask({n: _expand(keep[n], scores[n].shape, dims[n]) for n in scores})


def _select_global(
    groups: dict[str, torch.Tensor], group_size: dict[str, int], density: float
) -> dict[str, torch.Tensor]:
    """One ranking over all groups; each non-empty layer first keeps its best group (no collapse),
    then groups are taken in score order while the weight count stays closest to the target."""
    keep = {n: torch.zeros(0, dtype=torch.bool, device=g.device) for n, g in groups.items()}
    names = [n for n in groups if groups[n].numel()]
    if not names:
        return keep
    target = round(density * sum(groups[n].numel() * group_size[n] for n in names))
    sizes = [groups[n].numel() for n in names]
    flat = torch.cat([groups[n].cpu() for n in names])
    weight = torch.cat([torch.full((len_,), group_size[n]) for n, len_ in zip(names, sizes)])
    chosen = torch.zeros(flat.numel(), dtype=torch.bool)
    starts = torch.tensor([0, *sizes[:-1]]).cumsum(0)
    chosen[starts + torch.stack([_top(groups[n].cpu(), 1)[0] for n in names])] = True
    forced = int(weight[chosen].sum())
    order = torch.sort(flat, descending=True, stable=True).indices
    order = order[~chosen[order]]
    counts = forced + torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(weight[order], 0)])
    # extra groups: the prefix of the ranking whose weight count is closest to the target
    chosen[order[: int(torch.argmin((counts - target).abs()))]] = True
    keep.update({n: c.to(groups[n].device) for n, c in zip(names, chosen.split(sizes))})
    return keep


def input_feature_selection(
    scores_first_layer: torch.Tensor, keep: int | float, input_shape: tuple[int, ...] | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Induced feature selection (arXiv 2303.10999): rank the inputs of the first layer.

    importance[j] = sum of the scores reading input j (Linear column, conv input channel).
    `keep` is a count (int) or a fraction in (0, 1] (float). Returns the kept input indices
    (ascending) and the importance, reshaped to `input_shape` when given (e.g. (28, 28)).
    """
    if scores_first_layer.dim() < 2:
        shape = tuple(scores_first_layer.shape)
        raise ConfigError(f"first-layer scores must be >= 2-D, got shape {shape}")
    importance = _group_scores(scores_first_layer.detach().float(), (1,))
    n_in = importance.numel()
    if isinstance(keep, float):
        if not 0.0 < keep <= 1.0:
            raise ConfigError(f"keep fraction must be in (0, 1], got {keep}")
        count = max(round(keep * n_in), 1)
    else:
        if not 1 <= keep <= n_in:
            raise ConfigError(f"keep count must be in 1..{n_in}, got {keep}")
        count = keep
    kept_index = torch.sort(_top(importance, count)).values
    if input_shape is not None:
        if torch.Size(input_shape).numel() != n_in:
            raise ConfigError(f"input_shape {tuple(input_shape)} does not hold {n_in} inputs")
        importance = importance.reshape(input_shape)
    return kept_index, importance
