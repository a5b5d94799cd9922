"""FedRTS: federated robust pruning via combinatorial Thompson sampling.

Huang, Yang, Chen, Ye & Wu, "FedRTS: Federated Robust Pruning via Combinatorial Thompson Sampling",
NeurIPS 2025 (arXiv 2501.19122). Each weight position of a masked layer is a bandit arm with a
Beta(a, b) posterior. Every `adjust_every` rounds up to T_end (TSAdj, Sec. 4, section not verified),
the server fuses per-client and aggregated observations X in [0, 1] into the posteriors, draws one
Beta sample per coordinate and keeps the Top-K (K = the layer's active count, unchanged).

Public code followed (FedPruning/FedPruning, HEAD 7069881; FedRTS's own repository was unavailable):
* api/distributed/fedrts/FedRTSAggregator.py `aggregate` l.68-149 (active-link observations,
  every round: client top-kappa l.116-128, global top-kappa l.130-132, fusion l.133, prior
  l.138-140, update l.143-145) and `ts_adj` l.171-220 (k = min(int(f K), #inactive) l.185-189,
  inactive observations l.193-202, update l.206-208, Beta draw + Top-K l.211-216).
* api/pruning/init_scheme.py `f_decay` l.99-101 (the cosine schedule).
* api/distributed/fedrts/FedRTSServerManager.py `mode_convert` l.49-68 (adjustment when the 0-based
  round t > 0, t % delta_T == 0 and t <= T_end) and the receive handler l.70-98.
* api/distributed/fedtinyclean/my_model_trainer_classification.py `train` l.68-91 (dense gradient of
  one batch after local training, `growth_data_mode="batch"`).

Deviations:
* `gamma` weighs the AGGREGATED observation (paper convention, X = gamma X^agg + (1 - gamma)
  sum_n p_n X^n); the code weighs the global part by (1 - gamma). Same at the default 0.5.
* Clients upload the indices of their top-k |gradient| inactive coordinates (paper); HEAD's client
  returns dense gradients (trainer l.89) while its server indexes with them (l.199): inconsistent.
* Beta draws use numpy (`Generator.beta`) seeded by one draw from a torch.Generator, not
  `torch.manual_seed(t)` + `torch.distributions.Beta` (which takes no generator): the masks are
  reproducible from the run's seed but differ from the code's.
* `alpha`, `adjust_every` and `adjust_until` default to the top-level `alpha`, `readjust_every`
  and `readjust_until` (rounds // 2), so that FedRTS and FedDST compared in one run share them;
  the paper uses alpha_adj 0.4 (code 0.2), the code Delta T = 10 and T_end = 300 of 500 rounds.
* The adjustment fraction is fedsparse's `cosine` schedule, which is 0 from T_end on; the code's
  `f_decay` rises again after T_end. It only sets kappa of the active observations after the last
  adjustment, whose posteriors are never sampled again.
* Ties (equal |w|, |grad| or samples) go to the lower flat index; `torch.topk` leaves them
  unspecified.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from fedsparse.plugin_options import option
from fedsparse.sparse.mask import Mask
from fedsparse.sparse.schedules import cosine

Tensors = Mapping[str, Tensor]


@dataclass(frozen=True)
class FedRTSOptions:
    """Options of FedRTS (config `strategy_options`)."""

    lam: float = option(10.0, "posterior step lambda: a += lam X, b += lam (1 - X) (paper; code "
                        "initial_distribution_ratio)", lo=0, lo_open=True)
    gamma: float = option(0.5, "weight of the aggregated observation, paper convention X = gamma "
                          "X^agg + (1 - gamma) sum_n p_n X^n (the code weighs it by 1 - gamma)",
                          lo=0, hi=1)
    alpha: float | None = option(None, "alpha_adj: the adjustment fraction f(t) = alpha/2 (1 + cos(pi "
                                 "t / T_end)) of the active count; null = the top-level alpha "
                                 "(paper 0.4, code 0.2)", lo=0, hi=1, lo_open=True)
    adjust_every: int | None = option(None, "Delta T: rounds between topology adjustments; null = "
                                      "the top-level readjust_every (code 10)", lo=1)
    adjust_until: int | None = option(None, "T_end in rounds: the 0-based round t adjusts while t <= "
                                      "T_end; null = the top-level readjust_until (rounds // 2; "
                                      "code: 300 of 500)", lo=0)
    prior: float = option(1.0, "prior a = b of every coordinate's Beta posterior", lo=0,
                          lo_open=True)
    vote_gradient: str = option("batch", "data of the clients' dense gradient on vote rounds: one "
                                "batch (code), one epoch, or the last trained batch",
                                choices=("batch", "epoch", "last_batch"))
    observe_every_round: bool = option(True, "update the active coordinates' posteriors every "
                                       "round (code), not only on adjustment rounds")
    inactive_observation: float = option(0.5, "X^agg of the inactive coordinates (the server does "
                                         "not aggregate gradients)", lo=0, hi=1)

    def schedule(self, cfg: Any) -> tuple[int, int, float]:
        """(Delta T, T_end, alpha_adj) of a run: each option, or where null the top-level
        readjust_every / readjust_until (rounds // 2 when null) / alpha of config `cfg`, so that
        FedRTS and FedDST compared in one run share their schedule settings."""
        readjust = cfg.readjust
        until = readjust.readjust_until if readjust.readjust_until is not None else cfg.train.rounds // 2
        return (self.adjust_every if self.adjust_every is not None else readjust.readjust_every,
                self.adjust_until if self.adjust_until is not None else until,
                self.alpha if self.alpha is not None else readjust.alpha)


def adjusts(server_round: int, every: int, t_end: int) -> bool:
    """Whether 1-based `server_round` adjusts the topology: t = server_round - 1 (0-based, as the
    code), t > 0, t % every == 0 and t <= t_end (FedRTSServerManager.py l.49-68)."""
    t = server_round - 1
    return t > 0 and t % every == 0 and t <= t_end


def adjust_fraction(server_round: int, t_end: int, alpha: float) -> float:
    """f(t) = alpha/2 (1 + cos(pi t / t_end)) at t = server_round - 1; 0 from t_end on, also when
    t_end = 0 (init_scheme.py `f_decay` l.99-101, fedsparse's `cosine` schedule)."""
    t = server_round - 1
    return cosine(t, t_end, alpha) if t < t_end else 0.0


def active_counts(mask: Tensors) -> dict[str, int]:
    """K per layer: the number of active coordinates."""
    return {n: int(m.sum()) for n, m in mask.items()}


def _check_fraction(fraction: float) -> None:
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")


def _shares(client_shares: Sequence[float], clients: int) -> list[float]:
    """p_n = share_n / sum of shares (shares: sample counts or fractions)."""
    if clients == 0 or len(client_shares) != clients:
        raise ValueError(f"need one share per client and at least one client; got "
                         f"{len(client_shares)} shares for {clients} clients")
    if any(s < 0 for s in client_shares) or sum(client_shares) <= 0:
        raise ValueError(f"client shares must be >= 0 with a positive sum, got {client_shares}")
    total = float(sum(client_shares))
    return [float(s) / total for s in client_shares]


def _top_among(values: Tensor, candidates: Tensor, k: int) -> Tensor:
    """Flat indices of the k largest `values` (flat) among `candidates` (ascending flat indices);
    ties to the lower index."""
    order = torch.sort(values[candidates], descending=True, stable=True).indices[:k]
    return candidates[order]


def _top_indicator(weights: Tensor, active: Tensor, kappa: int) -> Tensor:
    """Flat float32 0/1 vector: 1 at the top-kappa |weights| among the `active` flat indices."""
    hit = torch.zeros(weights.numel(), dtype=torch.float32, device=active.device)
    hit[_top_among(weights.detach().reshape(-1).to(active.device).abs(), active, kappa)] = 1.0
    return hit


def vote_count(mask: Tensor, fraction: float) -> int:
    """k of one layer: min(int(fraction * K), #inactive) (FedRTSAggregator.py l.185-189)."""
    active = int(mask.sum())
    return min(int(fraction * active), mask.numel() - active)


def client_votes(mask: Tensors, grads: Tensors, fraction: float) -> dict[str, Tensor]:
    """Per layer, the flat indices (int64, ascending) of the top-k |grad| among the layer's
    inactive coordinates, k = min(int(fraction * K), #inactive), K = active count; among equal
    |grad| the lower flat index wins (FedRTSAggregator.py l.185-189, paper's client side)."""
    _check_fraction(fraction)
    votes = {}
    for name, m in mask.items():
        flat = m.reshape(-1)
        inactive = (~flat).nonzero().view(-1)
        g = grads[name].detach().reshape(-1).to(flat.device).abs()
        votes[name] = torch.sort(_top_among(g, inactive, vote_count(flat, fraction))).values
    return votes


VOTE_KEY = "fedrts_votes"
"""Instruction: this round adjusts the topology; clients upload their votes."""
VOTES = "votes"
"""Upload `extra.votes`: int32 flat indices, per layer ascending, layers concatenated in the
masked order."""
VOTE_SIZES = "vote_sizes"
"""Upload `extra.vote_sizes`: int64, the number of votes of each masked layer, in order."""


def encode_votes(votes: Mapping[str, Tensor], names: Sequence[str]) -> dict[str, np.ndarray]:
    """`client_votes`' indices as the two upload arrays (`VOTES`, `VOTE_SIZES`)."""
    parts = [votes[n].detach().reshape(-1).cpu().numpy() for n in names]
    flat = np.concatenate(parts) if parts else np.zeros(0)
    return {VOTES: flat.astype(np.int32), VOTE_SIZES: np.asarray([len(v) for v in parts], np.int64)}


def decode_votes(votes: np.ndarray | None, sizes: np.ndarray | None, mask: Mapping[str, Tensor],
                 names: Sequence[str], fraction: float) -> dict[str, Tensor]:
    """The per-layer votes (int64, on the mask's device) of one client's upload arrays; ValueError,
    naming the problem, unless they are 1-D integer arrays, one size per layer of `names` summing
    to the number of votes, each layer's votes distinct inactive flat indices, at most
    `vote_count` of them."""
    if votes is None or sizes is None:
        raise ValueError(f"no '{VOTES}' or '{VOTE_SIZES}' array")
    if votes.ndim != 1 or sizes.ndim != 1 or votes.dtype.kind not in "iu" or sizes.dtype.kind not in "iu":
        raise ValueError(f"'{VOTES}' and '{VOTE_SIZES}' must be 1-D integer arrays")
    if len(sizes) != len(names) or (sizes < 0).any() or int(sizes.sum()) != len(votes):
        raise ValueError(f"'{VOTE_SIZES}' must hold {len(names)} counts >= 0 summing to the "
                         f"{len(votes)} votes")
    out, start = {}, 0
    for name, size in zip(names, sizes.tolist()):
        flat = mask[name].reshape(-1)
        idx = votes[start:start + size].astype(np.int64)
        start += size
        if size > vote_count(flat, fraction):
            raise ValueError(f"{size} votes for layer '{name}', at most "
                             f"{vote_count(flat, fraction)} allowed")
        if size and (idx.min() < 0 or idx.max() >= flat.numel() or len(np.unique(idx)) != size):
            raise ValueError(f"the votes for layer '{name}' must be distinct flat indices in "
                             f"[0, {flat.numel()})")
        t = torch.from_numpy(idx).to(flat.device)
        if bool(flat[t].any()):
            raise ValueError(f"the votes for layer '{name}' must be inactive coordinates")
        out[name] = t
    return out


def active_observations(mask: Tensors, global_weights: Tensors, client_weights: Sequence[Tensors],
                        client_shares: Sequence[float], fraction: float,
                        gamma: float) -> dict[str, Tensor]:
    """X (float32, layer-shaped) on the active coordinates, 0 elsewhere:
    X = gamma 1[top-kappa |w_global|] + (1 - gamma) sum_n p_n 1[top-kappa |w_n|], top-kappa among
    the layer's active coordinates, kappa = K - int(fraction * K); ties to the lower flat index
    (FedRTSAggregator.py l.109-133, gamma in the paper's convention)."""
    _check_fraction(fraction)
    p = _shares(client_shares, len(client_weights))
    out = {}
    for name, m in mask.items():
        flat = m.reshape(-1)
        active = flat.nonzero().view(-1)
        kappa = active.numel() - int(fraction * active.numel())
        clients = torch.zeros(flat.numel(), dtype=torch.float32, device=flat.device)
        for pn, w in zip(p, client_weights):
            clients += pn * _top_indicator(w[name], active, kappa)
        x = gamma * _top_indicator(global_weights[name], active, kappa) + (1 - gamma) * clients
        out[name] = x.view(m.shape)
    return out


def inactive_observations(mask: Tensors, votes: Sequence[Tensors], client_shares: Sequence[float],
                          gamma: float, inactive_observation: float) -> dict[str, Tensor]:
    """X (float32, layer-shaped) on the inactive coordinates, 0 elsewhere:
    X = gamma inactive_observation + (1 - gamma) sum_n p_n 1[i in votes_n]; a client's repeated
    index counts once (FedRTSAggregator.py l.193-202, gamma in the paper's convention).
    ValueError for a layer missing from a client's votes, or a vote out of range or on an active
    coordinate."""
    p = _shares(client_shares, len(votes))
    out = {}
    for name, m in mask.items():
        flat = m.reshape(-1)
        clients = torch.zeros(flat.numel(), dtype=torch.float32, device=flat.device)
        for n, (pn, vote) in enumerate(zip(p, votes)):
            if name not in vote:
                raise ValueError(f"client {n} sent no votes for layer '{name}'")
            idx = vote[name].reshape(-1).to(device=flat.device, dtype=torch.int64)
            if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= flat.numel()
                                or bool(flat[idx].any())):
                raise ValueError(f"client {n}'s votes for layer '{name}' must be inactive flat "
                                 f"indices in [0, {flat.numel()})")
            hit = torch.zeros_like(clients)
            hit[idx] = 1.0
            clients += pn * hit
        x = gamma * inactive_observation + (1 - gamma) * clients
        out[name] = torch.where(flat, torch.zeros_like(x), x).view(m.shape)
    return out


class Posterior:
    """Beta(a, b) posteriors of every coordinate of the masked layers (float32, on the mask's
    device), initialised a = b = `prior` (FedRTSAggregator.py l.138-140)."""

    def __init__(self, mask: Tensors, prior: float = 1.0) -> None:
        if not prior > 0:
            raise ValueError(f"prior must be > 0, got {prior}")
        self.a = {n: torch.full(m.shape, prior, dtype=torch.float32, device=m.device)
                  for n, m in mask.items()}
        self.b = {n: t.clone() for n, t in self.a.items()}

    def update(self, x: Tensors, where: Tensors, lam: float) -> None:
        """a += lam X, b += lam (1 - X) on the coordinates selected by `where` (bool, per layer;
        only its layers) (FedRTSAggregator.py l.143-145, l.206-208)."""
        for name, sel in where.items():
            a, b = self.a[name], self.b[name]
            sel = sel.to(a.device)
            xs = x[name].to(device=a.device, dtype=torch.float32)[sel]
            if xs.numel() and not bool(((xs >= 0) & (xs <= 1)).all()):
                raise ValueError(f"observations of layer '{name}' must lie in [0, 1]")
            a[sel] += lam * xs
            b[sel] += lam * (1 - xs)

    def means(self) -> dict[str, Tensor]:
        """Posterior means a / (a + b)."""
        return {n: a / (a + self.b[n]) for n, a in self.a.items()}

    def sample(self, generator: torch.Generator) -> dict[str, Tensor]:
        """One Beta(a, b) draw per coordinate (float64, layer-shaped, on a's device). Takes exactly
        one value from `generator` (a seed in [0, 2^62)) and draws the layers in order with
        numpy's `default_rng(seed).beta` (torch's Beta sampler takes no generator)
        (FedRTSAggregator.py l.211-213)."""
        seed = int(torch.randint(2**62, (1,), generator=generator, device=generator.device))
        rng = np.random.default_rng(seed)
        out = {}
        for name, a in self.a.items():
            draw = rng.beta(a.cpu().double().numpy(), self.b[name].cpu().double().numpy())
            out[name] = torch.from_numpy(np.asarray(draw, dtype=np.float64)).to(a.device)
        return out

    def state_dict(self) -> dict[str, Tensor]:
        """Tensors `alpha/<layer>` (a) and `beta/<layer>` (b), for checkpoints."""
        return {**{f"alpha/{n}": t for n, t in self.a.items()},
                **{f"beta/{n}": t for n, t in self.b.items()}}

    def load_state_dict(self, state: Tensors) -> None:
        """Restore a and b from `state_dict()`'s tensors; ValueError on a missing, extra or
        mis-shaped tensor."""
        expected = self.state_dict()
        if set(state) != set(expected):
            raise ValueError(f"FedRTS posterior checkpoint has tensors {sorted(state)}, expected "
                             f"{sorted(expected)}")
        for key, t in expected.items():
            if tuple(state[key].shape) != tuple(t.shape):
                raise ValueError(f"FedRTS posterior tensor '{key}' has shape "
                                 f"{tuple(state[key].shape)}, expected {tuple(t.shape)}")
            t.copy_(state[key].to(device=t.device, dtype=t.dtype))


def top_k_mask(samples: Tensors, counts: Mapping[str, int]) -> Mask:
    """Per layer keep the `counts[name]` largest samples (ties to the lower flat index)
    (FedRTSAggregator.py l.214-216)."""
    out = {}
    for name, s in samples.items():
        flat = s.reshape(-1)
        k = counts[name]
        if not 0 <= k <= flat.numel():
            raise ValueError(f"count {k} of layer '{name}' must be in [0, {flat.numel()}]")
        keep = torch.zeros(flat.numel(), dtype=torch.bool, device=flat.device)
        keep[torch.sort(flat, descending=True, stable=True).indices[:k]] = True
        out[name] = keep.view(s.shape)
    return Mask(out)
