"""PruneFL: adaptive mask reconfiguration by the ratio of squared-gradient gain to round time.

Paper: Y. Jiang, S. Wang, V. Valls, B. J. Ko, W.-H. Lee, K. K. Leung, L. Tassiulas, "Model Pruning
Enables Efficient Federated Learning on Edge Devices", IEEE TNNLS 2022 (arXiv 1909.12326v5).
Two stages: initial pruning at one client (Sec. III-A, section not verified), then further
pruning during FedAvg, where every `adjust_every` rounds the server re-solves the mask from the
clients' accumulated squared gradients (Sec. IV, section not verified): keep the active weights of
largest magnitude (at most a fraction `dtp` of a layer's active weights may leave), then add the
candidates j in decreasing order of g_j^2 / t_j while that value exceeds the current ratio
sum g^2 / (c + sum t), which maximises the approximate empirical-risk reduction per unit time.

Public code followed: jiangyuang/PruneFL @ b499d3a, `control/algorithm.py` (`process_layer`
l.7-35, `architecture_search` l.38-80, `main_control` l.83-114), `bases/fl/simulation/adaptive.py`
(`AdaptiveServer.initial_pruning` l.125-182, dtp decay l.221-231, `AdaptiveClient.main`
l.277-320), `configs/cifar10.py` (defaults). The initial-stage round count `ip_rounds=5` follows
the FedDST repository's baseline (Dawns14/pffdst @ f48ff49, `prunefl.py` l.312-333).

Deviations:
- Per-weight time coefficients come from a cost model (`cost_coefficients`: MACs per weight,
  normalised, plus bits sent per active weight) instead of the paper's per-layer times measured
  on Raspberry Pis (`COMP_COEFFICIENTS`, `COMM_COEFFICIENT`); the constant c is `time_constant`
  times the dense masked layers' time (`round_constant`), so that it keeps the share of a round
  the official TIME_CONSTANT has (0.14 of the dense time for FEMNIST Conv-2, 0.71 for CIFAR-10
  VGG-11, from configs/femnist.py and cifar10.py). With c near 0 the best ratio is that of the
  single best weight, and each reconfiguration would shrink the model by about dtp.
- `max_active` caps the total active count exactly; the official loop can add one weight past
  `max_density` (it checks `num_params > max_num` before incrementing). As there, the cap only
  limits growth: the magnitude step never removes more than `dtp` of a layer for it.
- A layer without active weights is handled (all its weights are candidates); the official code
  indexes an empty sort there and fails.
- Ties are deterministic: candidates of a layer are ordered by g^2 descending, then flat index;
  across layers by g^2/t descending, then layer order (the official `torch.sort` is not stable;
  its heap breaks ties by layer index as here).
- The heap walk of `architecture_search` is done with prefix sums over the globally sorted
  candidates (the same greedy stop rule, vectorised).
- `SquaredGradients` stores weight * g^2 of detached copies; the official client aliases
  `param.grad`, so with several local steps it squares twice the last step's gradient.
- Rounds: the paper's round is 5 local iterations; here a round is `local_epochs` epochs, so its
  ADJ_INTERVAL = 50 rounds would be much more local work between reconfigurations; by default
  the schedule is the comparison's (readjust_every / readjust_until). The initial stage runs
  `ip_rounds` adaptive steps, one round of local training (or `ip_steps` SGD steps) apart, as
  the FedDST repository's baseline does, without the official accuracy gate and early stop
  (IP_THR, ADJ_THR_FACTOR) or its 1000-round budget.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import torch
from torch import Tensor

from fedsparse.comm import STORAGE, encode_positions
from fedsparse.plugin_options import option
from fedsparse.sparse.mask import Mask


@dataclass(frozen=True)
class PruneFLOptions:
    """Options of the `prunefl` strategy (config `strategy_options`)."""

    adjust_every: int | None = option(None, "rounds between two mask reconfigurations (null: the "
                                      "top-level readjust_every, so that FedDST and PruneFL "
                                      "reconfigure on the same schedule; the paper's code: "
                                      "ADJ_INTERVAL = 50 rounds of 5 local iterations)", lo=1)
    adjust_until: int | None = option(None, "no reconfiguration from this round on (null: the "
                                      "top-level readjust_until)", lo=0)
    max_dec: float = option(0.3, "largest fraction of a layer's active weights the magnitude step "
                            "of a reconfiguration may remove (official MAX_DEC_DIFF)",
                            lo=0, hi=1, hi_open=True)
    max_dec_half_life: float = option(10000.0, "rounds over which max_dec halves: dtp(t) = "
                                      "max_dec * 0.5 ** (t / half_life) (official ADJ_HALF_LIFE)",
                                      lo=0, lo_open=True)
    time_constant: float = option(0.14, "the constant c of the ratio sum g^2 / (c + sum t) (the "
                                  "time of a round independent of the active weights) as a "
                                  "fraction of the dense masked layers' time sum_l n_l t_l: the "
                                  "official TIME_CONSTANT is 0.14 of the dense time in its FEMNIST "
                                  "Conv-2 config, 0.71 in its CIFAR-10 VGG-11 one", lo=0)
    compute_weight: float = option(1.0, "weight of the compute term (normalised MACs per weight) "
                                   "in a weight's time coefficient", lo=0)
    comm_weight: float = option(1.0, "weight of the communication term (bits per active weight / "
                                "32) in a weight's time coefficient", lo=0)
    max_density: float | None = option(None, "cap on the density a reconfiguration may grow to "
                                       "(null: 1 - sparsity, so that PruneFL stays within the "
                                       "comparison's density budget; the paper's code has no cap "
                                       "unless given -m)", lo=0, hi=1, lo_open=True)
    initial: str = option("client", "initial mask: 'client' = initial pruning at one selected "
                          "client with the adaptive rule; 'criterion' = the project's initial "
                          "mask (initial_mask settings)", choices=("client", "criterion"))
    ip_rounds: int = option(5, "adaptive steps of the initial pruning stage (the FedDST "
                            "repository's baseline runs 5 initial rounds)", lo=1)
    ip_steps: int | None = option(None, "local SGD steps between two adaptive steps of the "
                                  "initial pruning stage (null: one round of local training, "
                                  "local_epochs passes over the client's data, as the FedDST "
                                  "repository's baseline)", lo=1)

    def check(self) -> str | None:
        if self.compute_weight == 0 and self.comm_weight == 0:
            return "compute_weight and comm_weight cannot both be 0 (every weight would cost 0)"
        return None


def decay(max_dec: float, half_life: float, t: float) -> float:
    """dtp at round `t`: max_dec * 0.5 ** (t / half_life) (adaptive.py l.229)."""
    return max_dec * 0.5 ** (t / half_life)


def cost_coefficients(shapes: Mapping[str, torch.Size], positions: Mapping[str, int],
                      value_bits: int, position_bits: float, compute_weight: float,
                      comm_weight: float) -> dict[str, float]:
    """Per-weight time coefficient t_l of each masked layer (replaces the measured
    COMP_COEFFICIENTS + COMM_COEFFICIENT of main_control, algorithm.py l.90-95):

        t_l = compute_weight * positions[l] / mean_w(positions) + comm_weight * (value_bits +
              position_bits) / 32,

    `positions[l]`: uses of a weight of layer l per sample (output positions, as in
    fedsparse.sparse.cost);
    the mean is over all weights (layers weighted by their size), so the compute term averages 1;
    the communication term is the bits sent per active weight in float32-value units."""
    sizes = {n: math.prod(s) for n, s in shapes.items()}
    total = sum(sizes.values())
    if total == 0:
        return {n: 0.0 for n in shapes}
    mean = sum(sizes[n] * positions[n] for n in shapes) / total
    comm = comm_weight * (value_bits + position_bits) / 32
    return {n: compute_weight * positions[n] / mean + comm for n in shapes}


INITIAL_STAGE = "initial_pruning"
"""`instructions["stage"]` of the round-0 exchange in which one client prunes the dense model."""
COLLECT = "collect_sq_grad"
"""Instruction: accumulate squared gradients this round and upload them."""
SQ_GRAD = "sq_grad"
"""Upload (`extra.sq_grad`): float32, the masked tensors' accumulated g^2 in full, concatenated in
masked order."""
SQ_GRAD_REST = "sq_grad_rest"
"""Upload (`extra.sq_grad_rest`): float32, one sum of accumulated g^2 per other parameter (biases,
unmasked layers), in `rest_names` order: the numerator's part that is not pruned."""


def rest_names(model: torch.nn.Module, masked: Iterable[str]) -> list[str]:
    """The model's parameters that are not masked, in parameter order."""
    masked = set(masked)
    return [n for n, _ in model.named_parameters() if n not in masked]


def reconfigures(server_round: int, every: int, until: int) -> bool:
    """Whether round t reconfigures: (t - 1) % every == 0 and t < until, FedDST's readjustment
    schedule (rounds 1, 1 + every, ...; fedsparse.fl.strategies.feddst `readjusts`)."""
    return (server_round - 1) % every == 0 and server_round < until


def density_cap(options: PruneFLOptions, sparsity: float) -> float:
    """The density a reconfiguration may grow to: `max_density`, or 1 - sparsity when unset."""
    return options.max_density if options.max_density is not None else 1.0 - sparsity


def position_bits(mask: Mask, codec: str) -> float:
    """Bits per masked weight of `mask`'s positions as `codec` encodes them (tag bytes included):
    about 1 for a bitmap, less for a sparse mask under `auto`."""
    total = mask.numel()
    if total == 0:
        return 0.0
    size = sum(encode_positions(m.reshape(-1).cpu().numpy(), codec).size for m in mask.values())
    return 8.0 * size / total


def layer_coefficients(positions: Mapping[str, int], mask: Mask, codec: str, value_dtype: str,
                       options: PruneFLOptions) -> dict[str, float]:
    """`cost_coefficients` of the masked layers of `mask`: `positions` = output positions per
    weight (fedsparse.sparse.cost.output_positions; 1 for a layer it does not list), value bits of
    the run's value dtype, position bits of `mask` in the run's codec."""
    shapes = {n: m.shape for n, m in mask.items()}
    return cost_coefficients(shapes, {n: positions.get(n, 1) for n in shapes},
                             8 * STORAGE[value_dtype].itemsize, position_bits(mask, codec),
                             options.compute_weight, options.comm_weight)


def round_constant(coeff: Mapping[str, float], mask: Mask, fraction: float) -> float:
    """The constant c of the ratio: `fraction` of the dense masked layers' time
    sum_l numel_l * coeff_l (the official TIME_CONSTANT, SPARSE_TIME * NUM_LOCAL_UPDATES, is a
    measured time; this keeps its share of a round)."""
    return fraction * sum(coeff[n] * m.numel() for n, m in mask.items())


class SquaredGradients:
    """Sums weight * g**2 elementwise per tracked parameter (ControlModule.accumulate,
    algorithm.py l.122-127; client side adaptive.py l.301-307)."""

    def __init__(self, names: Iterable[str]) -> None:
        self.names = list(names)
        self._sum: dict[str, Tensor] = {}

    def add(self, grads: Mapping[str, Tensor], weight: float = 1.0) -> None:
        """Adds weight * g**2 for every tracked name (`grads` must hold them all; other keys are
        ignored). The gradients are copied (float32), never aliased."""
        for n in self.names:
            sq = grads[n].detach().float().square().mul_(weight)
            if n in self._sum:
                self._sum[n] += sq
            else:
                self._sum[n] = sq

    @property
    def total(self) -> dict[str, Tensor]:
        """The sums so far (zeros of the gradients' shapes are not known before the first add:
        an empty dict then)."""
        return {n: t.clone() for n, t in self._sum.items()}


def _kept(mask: Tensor, weight: Tensor, dtp: float) -> Tensor:
    """The magnitude-kept set of one layer: active & |w| >= thr, thr = the int(dtp * n_active)-th
    smallest active |w| (process_layer l.14-18; ties at thr are kept)."""
    active = mask.sum().item()
    if active == 0:
        return mask.clone()
    magnitude = weight.detach().abs()
    thr = torch.sort(magnitude[mask])[0][int(dtp * active)]
    return mask & (magnitude >= thr)


def adaptive_mask(mask: Mapping[str, Tensor], weights: Mapping[str, Tensor],
                  sq_grad: Mapping[str, Tensor], coeff: Mapping[str, float], const: float,
                  dtp: float, extra_numerator: float = 0.0, max_active: int | None = None) -> Mask:
    """PruneFL's reconfiguration (algorithm.py `main_control` l.83-114 with `process_layer` and
    `architecture_search`): per layer keep the active weights of largest magnitude (at most
    int(dtp * n_active) removed); start num = extra_numerator + sum of g^2 over the kept set
    (extra: the biases' and unmasked layers' sums), den = const + sum coeff * |kept|; then add
    candidates (active-but-dropped or inactive weights) in decreasing g^2/coeff order while
    g^2/coeff > num/den, each adding g^2 to num and coeff to den, and at most
    max_active - |kept| of them in total. Returns the new mask (same devices as `mask`)."""
    names = list(mask)
    kept = {n: _kept(mask[n], weights[n], dtp) for n in names}
    num = float(extra_numerator)
    den = float(const)
    keys, gains, costs, owners, flat = [], [], [], [], []
    for i, n in enumerate(names):
        if coeff[n] <= 0:
            raise ValueError(f"coeff[{n!r}] = {coeff[n]} must be > 0")
        g = sq_grad[n].detach().to(torch.float64).reshape(-1)
        k = kept[n].reshape(-1).to(g.device)
        num += g[k].sum().item()
        den += coeff[n] * int(k.sum())
        idx = (~k).nonzero().squeeze(1)
        vals = g[idx]
        order = torch.sort(vals, descending=True, stable=True)[1]
        idx, vals = idx[order], vals[order]
        keys.append(vals / coeff[n])
        gains.append(vals)
        costs.append(torch.full_like(vals, float(coeff[n])))
        owners.append(torch.full_like(idx, i))
        flat.append(idx)
    new = {n: kept[n].clone(memory_format=torch.contiguous_format) for n in names}
    if not names:
        return Mask(new)
    device = keys[0].device
    key, gain, cost, owner, pos = (torch.cat([t.to(device) for t in ts])
                                   for ts in (keys, gains, costs, owners, flat))
    order = torch.sort(key, descending=True, stable=True)[1]
    key, gain, cost, owner, pos = key[order], gain[order], cost[order], owner[order], pos[order]
    # the ratio before adding candidate i: (num + earlier gains) / (den + earlier costs); only
    # the first can have den 0 (const 0, nothing kept): x/0 = inf (add nothing), 0/0 taken as 0
    ratio = (num + torch.cumsum(gain, 0) - gain) / (den + torch.cumsum(cost, 0) - cost)
    ratio = torch.where(torch.isnan(ratio), 0.0, ratio)
    stops = (key <= ratio).nonzero()
    count = int(stops[0, 0]) if len(stops) else len(key)
    if max_active is not None:
        count = min(count, max(0, max_active - sum(int(k.sum()) for k in kept.values())))
    for i, n in enumerate(names):
        chosen = pos[:count][owner[:count] == i]
        layer = new[n].view(-1)
        layer[chosen.to(layer.device)] = True
    return Mask(new)
