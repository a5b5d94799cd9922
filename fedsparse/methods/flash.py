"""FLASH: sparse federated training with a server-side density search (SPDST) and, optionally, a
joint dynamic mask (JMWST, "JointDST").

Paper: S. Babakniya, S. Kundu, S. Prakash, Y. Niu, S. Avestimehr, "Revisiting Sparsity Hunting in
Federated Learning: Why does Sparsity Consensus Matter?", TMLR 2023 (arXiv 2208.13092); the rules
below are taken from the public code, not the paper body (section not verified).
Public code followed (SaraBabakN/flash_fl @ fb88313):
- utiles.py 4-26 `get_avg_mask` (stage 1: per-layer densities from the clients' searched masks),
- utiles.py 29-76 `get_next_round_mask` (JMWST server consensus: per-layer counts, top-|w|),
- core.py 7-206 `Masking` (the clients' local DST: magnitude prune, mean-|w| regrowth shares,
  random growth, growth adjustment), core.py 31-41 `LinearDecay` (prune-rate schedule),
- training/client.py 84-101 and training/manager.py 42-106 (when each rule runs).

Stage 1 (both variants): m clients run local DST (`redistribute`, prune rate `prune_rate_at`) for
`search_epochs` epochs from a random mask and return their masks; `search_densities` turns them
into per-layer kept counts. SPDST then trains that mask fixed; JMWST lets clients run one DST step
per round and the server rebuilds the mask with `consensus_mask`.

Deviations from the public code:
- Counts are exact. `search_densities` / `consensus_mask` with rounding "exact" hit
  round(density * total) by largest remainder (the code: per-weight Bernoulli in stage 1, int() in
  the consensus; rounding "floor" reproduces int()). In stage 1 "exact" also re-solves the scale
  when a layer reaches density 1 (the code's min(1, .) drops that mass).
- `redistribute` grows exactly floor(g_l) weights per layer, uniformly at random from a seeded
  generator (the code: Bernoulli(g_l / inactive_l) per weight, so g_l only in expectation); pruning
  removes exactly ceil(rate * active_l) weights, ties to the lower flat index (the code sorts |w|
  over all entries, so active weights equal to 0 tie with inactive ones, and rate 0 drops active
  zeros). The regrowth overflow is spread in closed form (the limit of the code's 1000-pass
  residual loop, core.py 168-206). ceil() is taken after rounding to 9 decimals (float noise).
- A layer with no active weights has mean |w| 0 (the code gets NaN and fails in ceil()).
- Positions in stage 1 are the caller's (seeded); the code re-draws an unseeded model afterwards.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from fedsparse.plugin_options import option
from fedsparse.sparse.mask import Mask
from fedsparse.sparse.ops import grow_random, prune_lowest

SEARCH_STAGE = "search"
"""`stage` instruction of the round-0 density search (fedsparse.fl.strategies.exchange)."""
DST = "flash_dst"
"""Round instruction: run the FLASH client DST during local training (jmwst)."""

VARIANTS = ("spdst", "jmwst")
LAYER_COUNTS = ("avg", "aggregate")
AVERAGES = ("masked", "dense")
ROUNDINGS = ("exact", "floor")


@dataclass(frozen=True)
class FlashOptions:
    """Options of the `flash` strategy (config `strategy_options`)."""

    variant: str = option("spdst", "spdst: the searched mask stays fixed; jmwst: clients run DST "
                          "every round and the server rebuilds the mask (code: experiment_type)",
                          choices=VARIANTS)
    search_fraction: float = option(0.1, "fraction of all clients that run the stage-1 density "
                                    "search (code: init_frac)", lo=0, hi=1, lo_open=True)
    search_epochs: int = option(10, "local DST epochs of each searching client (code: init_epoch)",
                                lo=1)
    prune_rate: float = option(0.25, "clients' DST prune rate at the first step, decaying "
                               "linearly to 0 (code: prune_rate)", lo=0, hi=1, lo_open=True,
                               hi_open=True)
    update_every: int = option(1, "jmwst: rounds between mask updates; clients train the mask "
                               "fixed in between (code: jmwst_update_interval)", lo=1)
    layer_counts: str = option("avg", "jmwst: per-layer counts from the clients' mean active "
                               "count (avg) or the average's nonzeros (aggregate) (code: "
                               "subsample_method)", choices=LAYER_COUNTS)
    average: str = option("masked", "jmwst: per-coordinate mean over the clients holding it "
                          "(masked, code update_mode 1) or plain mean with zeros (dense, code "
                          "update_mode 0, its default)", choices=AVERAGES)
    rounding: str = option("exact", "per-layer counts: exact total by largest remainder, or "
                           "int() per layer as the code (floor)", choices=ROUNDINGS)


def _check(density: float, rounding: str, client_masks: Sequence[Mask]) -> None:
    if not 0.0 < density <= 1.0:
        raise ValueError(f"density must be in (0, 1], got {density}")
    if rounding not in ROUNDINGS:
        raise ValueError(f"unknown rounding '{rounding}'; allowed: {', '.join(ROUNDINGS)}")
    if not client_masks:
        raise ValueError("at least one client mask is needed")


def _largest_remainder(targets: Mapping[str, float], caps: Mapping[str, int],
                       total: int) -> dict[str, int]:
    """Integers within one of `targets` (each in [0, caps]) summing to `total` where the caps
    allow: floors, then +1 to the largest fractional parts (ties, to 9 decimals so that float
    noise does not decide them, to the earlier layer)."""
    kept = {n: min(max(math.floor(t), 0), caps[n]) for n, t in targets.items()}
    need = total - sum(kept.values())
    order = sorted(targets, key=lambda n: -round(targets[n] - math.floor(targets[n]), 9))
    step = 1 if need > 0 else -1
    for n in order if need > 0 else reversed(order):
        if need == 0:
            break
        if 0 <= kept[n] + step <= caps[n]:
            kept[n] += step
            need -= step
    return kept


def _mean_density(numels: Mapping[str, int], client_masks: Sequence[Mask]) -> dict[str, float]:
    """rho_l: the clients' mean fraction of active weights per layer (utiles.py 10-20)."""
    return {n: sum(int(m[n].sum()) / numels[n] for m in client_masks) / len(client_masks)
            for n in numels}


def search_densities(numels: dict[str, int], client_masks: list[Mask], density: float,
                     rounding: str) -> dict[str, int]:
    """Stage 1: kept counts per layer from the searching clients' masks (utiles.py 4-26).

    rho_l = mean over clients of active_l / numel_l; layer density min(1, c * rho_l) with c chosen
    so the total is `density` * sum(numels). "floor": int(min(1, c * rho_l) * numel_l) with the
    code's c (capped mass lost); "exact": c re-solved over the uncapped layers, then largest
    remainder to round(density * total). A layer no client kept anything of keeps 0."""
    _check(density, rounding, client_masks)
    rho = _mean_density(numels, client_masks)
    total = sum(numels.values())
    ones = sum(rho[n] * numels[n] for n in numels)
    if ones == 0:
        raise ValueError("the clients' masks keep no weight; no layer density to scale")
    if rounding == "floor":
        ratio = total / ones * density
        return {n: int(min(rho[n] * ratio, 1) * numels[n]) for n in numels}
    target = density * total
    capped: set[str] = set()
    while True:  # scale the free layers; a layer pushed past density 1 is capped and c re-solved
        free_ones = sum(rho[n] * numels[n] for n in numels if n not in capped)
        c = (target - sum(numels[n] for n in capped)) / free_ones if free_ones else 0.0
        over = {n for n in numels if n not in capped and rho[n] * c > 1}
        if not over:
            break
        capped |= over
    real = {n: numels[n] if n in capped else rho[n] * c * numels[n] for n in numels}
    return _largest_remainder(real, dict(numels), round(target))


def consensus_mask(average: dict[str, Tensor], client_masks: list[Mask], density: float,
                   layer_counts: str, rounding: str) -> Mask:
    """JMWST's server mask for the next round (utiles.py 43-76, `get_next_round_mask`).

    Per layer l of the clients' masks: L_l = the clients' mean active count ("avg") or the number
    of nonzeros of `average` ("aggregate"); ratio = min(1, density * total / sum L); keep the
    L_l * ratio entries of largest |average| (ties to the lower flat index). "floor": int() per
    layer as the code; "exact": largest remainder to round(min(density * total, sum L))."""
    _check(density, rounding, client_masks)
    if layer_counts not in LAYER_COUNTS:
        raise ValueError(f"unknown layer_counts '{layer_counts}'; allowed: "
                         f"{', '.join(LAYER_COUNTS)}")
    numels = {n: m.numel() for n, m in client_masks[0].items()}
    if layer_counts == "avg":
        rho = _mean_density(numels, client_masks)
        counts = {n: rho[n] * numels[n] for n in numels}
    else:
        counts = {n: float(torch.count_nonzero(average[n])) for n in numels}
    total, ones = sum(numels.values()), sum(counts.values())
    if ones == 0:
        raise ValueError(f"no active weight to keep (layer_counts={layer_counts})")
    ratio = min(1.0, total / ones * density)
    if rounding == "floor":
        kept = {n: int(counts[n] * ratio) for n in numels}
    else:
        kept = _largest_remainder({n: counts[n] * ratio for n in numels}, numels,
                                  round(min(density * total, ones)))
    out = {}
    for n, k in kept.items():
        w = average[n].detach()
        flat = torch.zeros(w.numel(), dtype=torch.bool, device=w.device)
        flat[torch.sort(w.reshape(-1).abs(), descending=True, stable=True).indices[:k]] = True
        out[n] = flat.reshape(w.shape)
    return Mask(out)


def _ceil(x: float) -> int:
    """ceil() of `x` rounded to 9 decimals (0.1 * 30 is 3, not 4)."""
    return math.ceil(round(x, 9))


def _spread_excess(grow: dict[str, float], cap: dict[str, float]) -> dict[str, float]:
    """Cap each layer's regrowth at `cap` and give the overflow, in equal shares, to the layers
    still under their caps: the limit of core.py 168-200's residual loop (every layer gets the
    same cumulative share S; the final values are min(cap, grow + S) summing to sum(grow))."""
    total = sum(grow.values())
    if sum(cap.values()) <= total:
        return dict(cap)
    capped: set[str] = set()
    share = 0.0
    while True:
        over = {n for n in grow if n not in capped and grow[n] + share > cap[n]}
        if not over:
            break
        capped |= over
        free = [n for n in grow if n not in capped]
        share = (total - sum(cap[n] for n in capped) - sum(grow[n] for n in free)) / len(free)
    return {n: cap[n] if n in capped else grow[n] + share for n in grow}


def redistribute(mask: Mask, weights: Mapping[str, Tensor], rate: float,
                 baseline: Mapping[str, float], adj: float, generator: torch.Generator,
                 history: list[float]) -> tuple[Mask, float]:
    """One FLASH client DST step, `Masking.truncate_weights` (core.py 112-206): returns the new
    mask and the new growth adjustment.

    a. v_l = mean |w| over layer l's active weights, normalised to sum 1 (BEFORE pruning);
       layers denser than 0.8 with v_l > 1/#layers prune at most their zero fraction (core.py
       94-110);
    b. drop ceil(rate_l * active_l) active weights of smallest |w| per layer;
    c. g_l = ceil(v_l * (removed_total + adj)), capped at 0.99 * (inactive_l + removed_l) with
       the excess spread over the other layers; grow floor(g_l) positions uniformly at random
       (scores from `generator`, layer by layer in the mask's order) among the layer's inactive
       positions after pruning (just-dropped ones included). Grown weights should be set to 0
       by the caller (`regrow_init(..., init="zero")`).
    Growth adjustment (core.py 138-139): shortfall = sum(baseline) - active after the step is
    appended to `history` (mutated: one list per client's local training, starting empty, with
    `adj` starting at 0, as the code builds a new `Masking` per update) and the result is
    0.25 * adj + 0.75 * shortfall + mean(history). `baseline`: the target kept count per layer
    (the code: density * numel_l); only its sum is used."""
    names = list(mask)
    active = {n: int(mask[n].sum()) for n in names}
    inactive = {n: mask[n].numel() - active[n] for n in names}
    mags = {n: weights[n].detach().abs() for n in names}
    v = {n: float(mags[n][mask[n].to(mags[n].device)].double().mean()) if active[n] else 0.0
         for n in names}
    total_v = sum(v.values())
    if total_v > 0:
        v = {n: x / total_v for n, x in v.items()}
    rates = {}
    for n in names:
        sparsity = inactive[n] / mask[n].numel()
        dominant = v[n] > 1.0 / len(names)  # expected / actual share < 1 (core.py 104-110)
        rates[n] = min(sparsity, rate) if sparsity < 0.2 and dominant else rate
    remove = {n: min(_ceil(rates[n] * active[n]), active[n]) for n in names}
    pruned = prune_lowest(mask, mags, remove)
    removed = sum(remove.values())
    wanted = {n: float(_ceil(v[n] * (removed + adj))) for n in names}
    caps = {n: 0.99 * (inactive[n] + remove[n]) for n in names}
    spread = _spread_excess(wanted, caps)
    counts = {n: min(max(math.floor(round(spread[n], 9)), 0), inactive[n] + remove[n])
              for n in names}
    new = grow_random(pruned, counts, generator)
    shortfall = float(sum(baseline.values()) - new.num_active())
    history.append(shortfall)
    return new, 0.25 * adj + 0.75 * shortfall + sum(history) / len(history)


def prune_rate_at(step: int, total_steps: int, rate: float) -> float:
    """The clients' prune rate after `step` optimizer steps of `total_steps` (= batches * local
    epochs): `rate` decayed linearly to 0 (core.py 31-41, 73-77; not below 0). The code prunes
    after each epoch e < E (step e * batches), or, with one local epoch, right after step
    batches // 2 + 1 (training/client.py 84-101)."""
    if total_steps < 1:
        raise ValueError(f"total_steps must be >= 1, got {total_steps}")
    return max(0.0, rate - step * (rate / total_steps))


def dst_points(batches: int, epochs: int) -> list[int]:
    """The optimizer steps (counted from the start of local training) after which a client
    redistributes its mask: the end of every epoch but the last, or, with one epoch, the step of
    batch batches // 2 (0-based), i.e. after batches // 2 + 1 steps (training/client.py 84-101;
    with one or two batches that is after the last step)."""
    if batches < 1 or epochs < 1:
        raise ValueError(f"batches and epochs must be >= 1, got {batches}, {epochs}")
    if epochs == 1:
        return [batches // 2 + 1]
    return [e * batches for e in range(1, epochs)]


def dense_average(states: Sequence[Mapping[str, Tensor]], masks: Sequence[Mask],
                  weights: Sequence[float]) -> tuple[dict[str, Tensor], Mask]:
    """(weighted mean of every tensor, zeros of the clients not holding a coordinate included;
    union of the masks): the code's update_mode 0 (`average_weights`, aggregator.py 41-50, an
    unweighted mean; weighted by `weights` here as the project's FedAvg)."""
    if not states or len(states) != len(masks) or len(states) != len(weights):
        raise ValueError("dense_average needs one mask and one weight per state, at least one")
    w = torch.as_tensor(list(weights), dtype=torch.float64)
    total = float(w.sum())
    out = {}
    for name, ref in states[0].items():
        acc = torch.zeros_like(ref, dtype=torch.float64)
        for s, wi in zip(states, w.tolist()):
            acc.add_(s[name].double(), alpha=wi)
        out[name] = acc.div_(total).to(ref.dtype)
    union = {n: torch.stack([m[n] for m in masks]).any(0) for n in masks[0]}
    return out, Mask(union)
