"""PFFDST: parameter-freezing-based dynamic sparse training with differential sparsity.

Paper: Li, Yang, Guo, Yu, Qin, Zhang, "An Efficient and Accurate Dynamic Sparse Training
Framework Based on Parameter-Freezing", AAAI 2025 (doi 10.1609/aaai.v39i17.34019); "Algorithm 1:
Mask readjustment on the server with differential sparsity" and "Algorithm 2: Parameter-freezing-
based dynamic sparse training" (section not verified; the main text was not available). One global
model, trained in two stages (final density d, d1 = d / 2):
- Stage 1 (rounds before `freeze_at`): a sub-network of density d1 plus a differential f; every
  `differential_every` rounds up to `differential_until` the server drops f weights of smallest
  |w| and regrows f at random; at `differential_until` it drops the extra f (back to d1).
- Stage 2: the stage-1 sub-network F is frozen (values fixed on clients and server), d1 new
  weights T are grown at random outside it and only T is trained and uploaded.

Public code followed: Dawns14/pffdst @ f48ff49: `dst.py` l.96-119 (flags), 516-526 (differential
readjust), 537-557 (freeze and grow), 742-757 (server re-prune; frozen values restored);
`models.py` l.254-258 (`freeze`), 261-300 (`grown`), 302-342 (`grown_mask`), 344-379
(`prune_mask`).

Rounds: the API takes the 1-based round t that has just been aggregated (the strategy's
`server_update(server_round=t)`); acting then is acting at the START of the code's 0-based round
t (`for server_round in range(R)`, checked before the round's training), so t is compared with
the code's constants unchanged: readjust at t % 10 == 0 for 0 < t < R // 4, drop at t == R // 4,
freeze at t == R // 2.

Deviations:
- `differential_counts="budget"` (default): f per layer is a fraction of the layer's d1 count, so
  no layer is emptied; "numel" is the code's per-layer int(f * numel) (a layer whose count is
  below it loses all its movable weights at a drop; the code's end-of-round `layer_prune`, dst.py
  742-746, then re-prunes to ERK counts whenever the global density exceeds its target).
- The final drop of f happens at round `differential_until * R` in all cases. In the code it does
  so only when R // 4 is a multiple of 10; otherwise the server's aggregation re-prune
  (`layer_prune` to the ERK budget by magnitude, dst.py 742-746) removes it one round later.
- `stage2_extra=False` (default): stage 2 grows d1, giving the paper's final density d; the code
  grows d1 + f and never drops the extra f (final density 1.25 d), `stage2_extra=True`.
- Ties go to the lower flat index (the code's `torch.topk` order is unspecified); random draws
  come from the caller's generator (U[0, 1) scores per layer, the `random` criterion's stream),
  not `torch.randperm` / `torch.multinomial` on the global RNG.
- The frozen sub-network is the CURRENT global model, not the code's best-by-test-accuracy
  snapshot (`best_params`, dst.py 539); that choice is the strategy's.
- Not provided: the code's ablation "w/o SMR" (clients run FedDST's readjustment,
  readjustment_ratio > 0) and the "topk" gradient growth at the freeze (`freeze_grow_method`);
  the full method uses neither (readjustment_ratio 0, "random").

On the wire (the strategy's stage 2): clients learn F as `frozen_bits`, one bit per active weight
of the global mask (`frozen_bits` / `frozen_from_bits`); they upload T = mask & ~F only.
"""

from __future__ import annotations

from typing import Any

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from fedsparse.plugin_options import option
from fedsparse.sparse.mask import Mask
from fedsparse.sparse.ops import grow_random
from fedsparse.sparse.prune_grow import Readjusted, RuleInputs, readjust

DIFFERENTIAL_COUNTS = ("budget", "numel")
FREEZE_GROW = ("random",)
FROZEN_BITS = "frozen_bits"
"""The extra array of a stage-2 train message: which active weights are frozen."""


@dataclass(frozen=True)
class PFFDSTOptions:
    """Options of the `pffdst` strategy (config `strategy_options`)."""

    freeze_at: float = option(0.5, "fraction of the rounds after which the sub-network is frozen "
                              "and new weights are grown (code: start_prune = R // 2)",
                              lo=0, hi=1, lo_open=True, hi_open=True)
    differential: float = option(0.5, "differential sparsity f as a fraction of the stage-1 "
                                 "density d1 (code: float_rate = d1 / 2); 0 = no server "
                                 "readjustment", lo=0, hi=1)
    differential_until: float = option(0.25, "fraction of the rounds at which the extra f is "
                                       "dropped and readjustment ends (code: float_end = R // 4)",
                                       lo=0, hi=1, lo_open=True, hi_open=True)
    differential_every: int = option(10, "rounds between two server readjustments (code: 10)",
                                     lo=1)
    differential_counts: str = option("budget", "f per layer: 'budget' = differential x the "
                                      "layer's d1 count; 'numel' = differential x d1 x the "
                                      "layer's size (the code's f * numel)",
                                      choices=DIFFERENTIAL_COUNTS)
    freeze_grow: str = option("random", "how the stage-2 weights are chosen outside the frozen "
                              "sub-network (code: freeze_grow_method)", choices=FREEZE_GROW)
    stage2_extra: bool = option(False, "grow d1 + f (not d1) at the freeze and keep it, as the "
                                "code does (final density 1.25 d)")

    def check(self) -> str | None:
        """One line if the fields disagree, else None."""
        if self.differential_until > self.freeze_at:
            return (f"differential_until ({self.differential_until}) must be <= freeze_at "
                    f"({self.freeze_at})")
        return None

    def check_config(self, cfg: Any) -> str | None:
        """One line if the run's mask keys do not fit PFFDST's per-layer initial mask."""
        settings = {"scope": (cfg.mask.scope, "layer"),
                    "granularity": (cfg.mask.granularity, "unstructured"),
                    "input_keep": (cfg.mask.input_keep, 1.0),
                    "mask_ablation": (cfg.mask.mask_ablation, "none")}
        unsupported = [f"{k}={v}" for k, (v, default) in settings.items() if v != default]
        if unsupported:
            return (f"{', '.join(unsupported)}: its initial mask is per layer from the criterion's "
                    "scores (needs scope=layer, granularity=unstructured, input_keep=1.0, "
                    "mask_ablation=none)")
        return None


# ------------------------------------------------------------------------------ counts
def stage_counts(budget: Mapping[str, int], numels: Mapping[str, int], differential: float,
                 counts: str) -> tuple[dict[str, int], dict[str, int]]:
    """(d1, f) counts per layer from the FINAL budget (density d = 1 - sparsity).

    d1[n] = max(1, budget[n] // 2): the stage-1 sub-network (later frozen) and the stage-2 growth.
    f[n] = int(differential * d1[n]) with `counts="budget"`, or int(differential * d1_density *
    numels[n]) with "numel" (the code's per-layer int(float_rate * numel), models.py 322/364), where
    d1_density = sum(budget) / (2 * sum(numels)). Stage 1 starts at d1 + f per layer."""
    if counts not in DIFFERENTIAL_COUNTS:
        raise ValueError(f"counts must be one of {', '.join(DIFFERENTIAL_COUNTS)}, got {counts!r}")
    d1 = {n: max(1, int(b) // 2) for n, b in budget.items()}
    if counts == "budget":
        return d1, {n: int(differential * k) for n, k in d1.items()}
    d1_density = sum(budget.values()) / (2 * sum(numels[n] for n in budget))
    return d1, {n: int(differential * d1_density * numels[n]) for n in budget}


def freeze_counts(d1: Mapping[str, int], f: Mapping[str, int],
                  stage2_extra: bool) -> dict[str, int]:
    """Weights to grow per layer at the freeze: d1 (+ f with `stage2_extra`, dst.py 550)."""
    return {n: d1[n] + (f.get(n, 0) if stage2_extra else 0) for n in d1}


# ------------------------------------------------------------------------------ schedule
def _at(fraction: float, rounds: int) -> int:
    """floor(fraction * rounds), robust to float error (0.29 * 100 -> 29)."""
    return math.floor(fraction * rounds + 1e-9)


def freeze_round(rounds: int, opts: PFFDSTOptions) -> int:
    """The round after which the freeze happens: floor(freeze_at * rounds) (code: R // 2)."""
    return _at(opts.freeze_at, rounds)


def differential_end(rounds: int, opts: PFFDSTOptions) -> int:
    """The round after which the extra f is dropped: floor(differential_until * rounds)
    (code: float_end = R // 4)."""
    return _at(opts.differential_until, rounds)


def is_differential_round(t: int, rounds: int, opts: PFFDSTOptions) -> str | None:
    """What the server does to the mask after aggregating 1-based round t of `rounds`:
    "readjust" (drop f, regrow f) when 0 < t < R_end and t % differential_every == 0; "drop"
    (drop f only) when t == R_end; None otherwise or with differential == 0 (dst.py 516-526;
    see the module docstring for the round mapping and the R_end deviation). R_end = 0 (too few
    rounds): never."""
    end = differential_end(rounds, opts)
    if opts.differential == 0 or not 0 < t <= end or t >= rounds:
        return None
    if t == end:
        return "drop"
    return "readjust" if t % opts.differential_every == 0 else None


def is_freeze_round(t: int, rounds: int, opts: PFFDSTOptions) -> bool:
    """Whether the server freezes after aggregating 1-based round t (dst.py 537: 0-based
    server_round == R // 2). A round that is also the "drop" round drops first (code order).
    With floor(freeze_at * rounds) == 0 no freeze happens."""
    return 0 < t < rounds and t == freeze_round(rounds, opts)


# ------------------------------------------------------------------------------ rules
def differential_readjust(mask: Mask, weights: Mapping[str, Tensor], f_counts: Mapping[str, int],
                          generator: torch.Generator, grow: bool,
                          frozen: Mask | None = None) -> Readjusted:
    """Per layer, drop the f_counts[n] active, non-frozen weights of smallest |w|; then, if
    `grow`, activate f_counts[n] uniformly random positions among the inactive ones (the just
    dropped included, frozen never) (models.py 344-379 `prune_mask`, 302-342 `grown_mask`).
    Fewer candidates than a count: all of them. Frozen positions keep their state in `mask`.

    Returns the `Readjusted` (`pruned`: after the drop; `grown`: the positions activated; `mask`:
    the new mask); apply it to the weights with `reset_readjusted`."""
    frozen_m = {n: frozen[n] if frozen is not None and n in frozen else torch.zeros_like(m)
                for n, m in mask.items()}
    movable = Mask({n: m & ~frozen_m[n] for n, m in mask.items()})
    dropped = readjust(movable, RuleInputs(weights=weights), dict(f_counts), grow=None).mask
    pruned = Mask({n: dropped[n] | (m & frozen_m[n]) for n, m in mask.items()})
    if not grow:
        return Readjusted(pruned, Mask({n: torch.zeros_like(m) for n, m in mask.items()}), pruned)
    blocked = Mask({n: pruned[n] | frozen_m[n] for n in mask})
    new = grow_random(blocked, dict(f_counts), generator)
    grown = Mask({n: new[n] & ~blocked[n] for n in mask})
    return Readjusted(pruned, grown, Mask({n: pruned[n] | grown[n] for n in mask}))


@torch.no_grad()
def reset_readjusted(weights: Mapping[str, Tensor], readjusted: Readjusted) -> None:
    """In place: zero the weights outside the new mask and the grown ones, a just-dropped weight
    that was regrown included (models.py 337, 375: dropped and grown weights are set to 0)."""
    for n, m in readjusted.mask.items():
        w = weights[n]
        w.masked_fill_((~m | readjusted.grown[n]).to(w.device), 0.0)


def freeze_and_grow(mask: Mask, counts: Mapping[str, int],
                    generator: torch.Generator) -> tuple[Mask, Mask]:
    """(F, T): F = the current mask (frozen); T = counts[n] uniformly random positions per layer
    outside F (all of them if fewer) (models.py 254-300 `freeze`, `grown` with grad_dict None).
    The new global mask is F | T; T's weights start at 0 (models.py 295)."""
    frozen = mask.clone()
    new = grow_random(frozen, dict(counts), generator)
    return frozen, Mask({n: new[n] & ~frozen[n] for n in mask})


@torch.no_grad()
def restore_frozen(weights: Mapping[str, Tensor], frozen: Mask,
                   frozen_values: Mapping[str, Tensor]) -> None:
    """In place: write the frozen values back at the frozen positions (clients after every step,
    models.py 538-542; the server after averaging, dst.py 750-757). `frozen_values` holds dense
    tensors (only their frozen entries are read)."""
    for n, f in frozen.items():
        w = weights[n]
        f = f.to(w.device)
        w[f] = frozen_values[n].to(w.device, w.dtype)[f]


# ------------------------------------------------------------------------------ wire
def frozen_bits(mask: Mask, frozen: Mask, names: Sequence[str]) -> np.ndarray:
    """F as 1 bit per active weight of `mask` (tensors in `names` order, each in C order, the
    order of a payload's values), packed with np.packbits (uint8, ceil(active / 8) bytes)."""
    flags = [frozen[n].reshape(-1)[mask[n].reshape(-1)].cpu().numpy() for n in names]
    return np.packbits(np.concatenate(flags) if flags else np.zeros(0, bool))


def frozen_from_bits(mask: Mask, bits: np.ndarray, names: Sequence[str]) -> Mask:
    """The inverse of `frozen_bits` on the receiver's copy of `mask`; ValueError if `bits` is not
    uint8 of ceil(active / 8) bytes with zero padding."""
    active = [mask[n].reshape(-1).nonzero().squeeze(1) for n in names]
    total = sum(int(a.numel()) for a in active)
    if bits.dtype != np.uint8 or bits.shape != (-(-total // 8),):
        raise ValueError(f"{FROZEN_BITS}: expected uint8 of shape ({-(-total // 8)},), got "
                         f"{bits.dtype} {bits.shape}")
    flat = np.unpackbits(bits)
    if flat[total:].any():
        raise ValueError(f"{FROZEN_BITS}: padding bits are not zero")
    flags = torch.from_numpy(flat[:total].astype(bool))
    out, start = {}, 0
    for n, idx in zip(names, active):
        m = torch.zeros(mask[n].numel(), dtype=torch.bool)
        m[idx.cpu()] = flags[start:start + idx.numel()]
        out[n] = m.reshape(mask[n].shape).to(mask[n].device)
        start += idx.numel()
    return Mask(out)
