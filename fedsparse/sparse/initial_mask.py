"""`build_initial_mask`: the mask of pruning at initialisation from a model, scores and a seed.

criterion scores -> invert (ablation) -> input selection (`input_keep` < 1) -> per-layer budget ->
select (scope, granularity) -> every kept input covered -> shuffle / reinit (ablation). Pure: the
model is not modified, and nothing here knows where the scores were computed (the server's proxy
set, or the clients' average in fedsparse/fl/strategies/initial_mask.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from fedsparse.errors import ConfigError
from fedsparse.models.prunable import first_layer_name
from fedsparse.plugin_options import as_kwargs
from fedsparse.sparse.ablation import invert_scores, reinit_kept, shuffle_within_layers
from fedsparse.sparse.budgets import layer_budget
from fedsparse.sparse.criteria import Batches, synflow_mask
from fedsparse.sparse.input_features import cover_inputs, importance_shape, input_keep_mask
from fedsparse.sparse.mask import Mask
from fedsparse.sparse.mask_spec import MaskSpec
from fedsparse.sparse.select import input_feature_selection, select_mask

SHUFFLE_STREAM, REINIT_STREAM = 13, 17


@dataclass(frozen=True)
class InputSelection:
    """Induced feature selection: the first layer's kept inputs (ascending) and every input's
    importance (the first-layer scores summed per input, shaped as the image when possible)."""

    layer: str
    kept_index: Tensor
    importance: Tensor


@dataclass(frozen=True)
class InitialMask:
    """The mask; the input selection (None with input_keep = 1); with the `reinit` ablation, the
    masked weights' new values (kept entries from a fresh seeded init; None otherwise)."""

    mask: Mask
    input_selection: InputSelection | None = None
    weights: dict[str, Tensor] | None = None


def derived_seed(seed: int, stream: int) -> int:
    """An independent seed for one use (`stream`) of the run's `seed`."""
    return int(np.random.SeedSequence([seed, stream]).generate_state(1)[0]) % (2**31 - 1)


def build_initial_mask(model: nn.Module, names: list[str], spec: MaskSpec, seed: int,
                       input_shape: Sequence[int], batches: Batches | None = None,
                       scores: Mapping[str, Tensor] | None = None,
                       fresh_model: Callable[[int], nn.Module] | None = None,
                       counts: Mapping[str, int] | None = None) -> InitialMask:
    """The initial mask of `names` in `model` (whose inputs have `input_shape` (C, H, W)).

    Per-layer kept counts: the spec's budget at its density (scope "layer"), or `counts` when a
    method sets its own (PFFDST's stage-1 d1 + f).

    Scores: `scores` when given (e.g. averaged over clients), else the criterion on `batches`
    with a generator seeded by `seed`. SynFlow is data-free and prunes iteratively with no single
    ranking: with mask_ablation=invert, input selection or a structured granularity, its one-shot
    scores (one pass at the dense model) are ranked; otherwise the mask is the iterative SynFlow
    mask (within the kept inputs when inputs are selected). `fresh_model(seed)` builds the model
    afresh for the reinit ablation.
    """
    iterative = not spec.scores_data and spec.ablation != "invert" and spec.granularity == "unstructured"
    ranking: dict[str, Tensor] | None = None
    if not spec.scores_data:
        if not iterative or spec.input_keep < 1:
            ranking = spec.score(model, names, None, input_shape=tuple(input_shape))
    elif scores is not None:
        ranking = dict(scores)
    else:
        ranking = spec.score(model, names, batches, generator=torch.Generator().manual_seed(seed))
    if ranking is not None and spec.ablation == "invert":
        ranking = invert_scores(ranking)
    params = dict(model.named_parameters())
    shapes = {n: params[n].shape for n in names}
    selection = (select_inputs(model, names, ranking, spec.input_keep, input_shape)
                 if spec.input_keep < 1 else None)
    allowed = {selection.layer: input_keep_mask(shapes[selection.layer], selection.kept_index)
               } if selection is not None else {}
    if iterative:
        mask = _synflow_mask(model, names, spec, shapes, allowed, input_shape, counts)
    else:
        assert ranking is not None
        ranked = {n: s.masked_fill(~allowed[n].to(s.device), float("-inf")) if n in allowed else s
                  for n, s in ranking.items()}
        mask = select_mask(ranked, spec.density, scope=spec.scope, budget=spec.budget,
                           granularity=spec.granularity, counts=counts)
        mask = Mask({n: m & allowed[n].to(m.device) if n in allowed else m for n, m in mask.items()})
    if selection is not None and spec.ablation != "shuffle":
        assert ranking is not None
        first = selection.layer
        covered = cover_inputs(mask[first], ranking[first], selection.kept_index)
        mask = Mask({n: covered.to(m.device) if n == first else m for n, m in mask.items()})
    weights = None
    if spec.ablation == "shuffle":
        gen = torch.Generator().manual_seed(derived_seed(seed, SHUFFLE_STREAM))
        mask = shuffle_within_layers(mask, gen, allowed)
    elif spec.ablation == "reinit":
        if fresh_model is None:
            raise ConfigError("mask_ablation='reinit' needs a model factory (fresh_model)")
        fresh = dict(fresh_model(derived_seed(seed, REINIT_STREAM)).named_parameters())
        current = {n: params[n].detach() for n in names}
        weights = reinit_kept(current, mask, {n: fresh[n].detach() for n in names})
    return InitialMask(mask, selection, weights)


def _synflow_mask(model: nn.Module, names: list[str], spec: MaskSpec,
                  shapes: Mapping[str, torch.Size], allowed: Mapping[str, Tensor],
                  input_shape: Sequence[int], counts: Mapping[str, int] | None = None) -> Mask:
    """Iterative SynFlow to the budget's (or `counts`') per-layer densities (`scope` layer) or
    one global density, starting from the allowed inputs."""
    density: float | dict[str, float] = spec.density
    if spec.scope == "layer":
        counts = counts if counts is not None else layer_budget(spec.budget, dict(shapes), spec.density)
        density = {n: counts[n] / int(np.prod(shapes[n])) for n in names}
    start = None
    if allowed:
        start = Mask({n: allowed.get(n, torch.ones(shapes[n], dtype=torch.bool)) for n in names})
        if isinstance(density, dict):
            density = {n: min(d, start[n].float().mean().item()) for n, d in density.items()}
        else:
            density = min(density, start.density())
    return synflow_mask(model, names, density, input_shape=tuple(input_shape), mask=start,
                        **as_kwargs(spec.options))


def select_inputs(model: nn.Module, names: list[str], scores: Mapping[str, Tensor] | None,
                  keep: float, input_shape: Sequence[int]) -> InputSelection:
    """Induced feature selection: keep the `keep` fraction of the first layer's inputs with the
    largest summed scores."""
    first = first_layer_name(model)
    if first not in names:
        raise ConfigError(f"input_keep={keep} needs the first layer '{first}' masked "
                          "(a sparse strategy and keep_first_dense=false)")
    assert scores is not None
    n_in = dict(model.named_parameters())[first].shape[1]
    view = importance_shape(n_in, input_shape[0], tuple(input_shape[1:]))
    kept_index, importance = input_feature_selection(scores[first].cpu(), keep, view)
    return InputSelection(first, kept_index, importance)
