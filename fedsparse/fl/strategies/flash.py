"""`flash`: FLASH (Babakniya, Kundu, Prakash, Niu, Avestimehr, "Revisiting Sparsity Hunting in
Federated Learning: Why does Sparsity Consensus Matter?", TMLR 2023, arXiv 2208.13092): a
server-side sensitivity (density) search at round 0, then SPDST (the searched mask fixed) or
JMWST / "JointDST" (clients run DST every round and the server rebuilds the mask by consensus).
Paper: the FLASH framework and its SPDST / JMWST algorithms (section not verified: only the
paper's opening was readable here; every rule follows the public code).

Public code followed: SaraBabakN/flash_fl @ fb88313: `training/manager.py` (stage 1
`initialize_mask` / `train_server_mask` l.42-68, round loop `start_federated_learning` /
`train_clients` l.70-106, `train_mask_only` l.108-113), `training/client.py` (local DST
l.55-101), `core.py` (`Masking`, `LinearDecay`), `utiles.py` (`get_avg_mask` l.4-26,
`get_next_round_mask` l.60-76), `training/aggregator.py` (update_mode 0/1). The rules, options
and client step: fedsparse/methods/flash.py, flash_client.py.

Flow here:
- Round 0 (both variants), the density search: m = max(1, int(search_fraction * num_clients))
  clients (`sample_clients(seed, 0, ...)`) get the initial weights on a seeded random mask M0
  (uniform density 1 - sparsity per layer, as the code's `get_rand_mask`), run `search_epochs`
  local epochs of the FLASH client DST from it and reply with their masks; the server turns them
  into per-layer counts (`search_densities`), places them at seeded random positions (as
  `get_avg_mask`) and adopts that mask. Both directions are in the ledger at round 0 (each
  searching client's reply carries its trained active values, which a reply must carry to be
  valid, as well as its positions: about one sparse upload + positions per searching client);
  row: `flash_search_clients`, `flash_search_density` (the searched masks' mean density),
  `stage_client_time_s`.
- spdst: FedAvg on the searched mask, fixed (the base strategy).
- jmwst: on mask rounds ((t - 1) % update_every == 0, the code's 0-based `round_idx %
  jmwst_update_interval == 0`) clients train with the FLASH client DST and upload their masks
  (positions, counted); the server averages (`average` option), then rebuilds the mask by
  `consensus_mask` on the average (per-layer counts from the clients' masks, top |w|) and adopts
  it (the next round re-sends positions to every client). Between mask rounds clients train the
  mask fixed (the code's `client.freeze`). Row: `flash_mask_updated` (1/0),
  `flash_client_density` (the replies' mean mask density), `flash_union_density`,
  `client_flash_redistributions` (DST steps run by the round's clients).
- Replies' budget (jmwst): a client's DST steers its active count toward (1 - sparsity) * numel
  but only approximately (ceil per layer in pruning and regrowth, the growth adjustment's
  feedback), so a reply may hold up to max(global active, target) * 1.05 + one weight per masked
  layer; a denser reply is rejected as any over-budget reply is.

Deviations from the public code, and why:
- Weights after the search: the seeded initial weights are kept (the code re-draws an unseeded
  model, `get_model`, manager.py 52: the same distribution; seeded for reproducibility).
- Evaluation: the server evaluates its state after the new mask is applied (the code evaluates
  the average before masking, so its reported model may be as dense as the union of the client
  masks: that is not the sparse model the method sends).
- Counts: exact (`rounding=exact`, largest remainder to round(density * total)); the code's
  per-weight Bernoulli draw in `get_avg_mask` and int() in `get_next_round_mask` are available as
  `rounding=floor` (the floor only; stage-1 positions are always exact counts). The client DST
  grows exact counts uniformly at random (the code: Bernoulli per weight); see
  fedsparse/methods/flash.py for the rules' own deviations.
- Aggregation: `average=masked` (default) averages each coordinate over the clients holding it
  (the code's update_mode 1, "FMA"); `average=dense` is the code's default update_mode 0, a
  plain mean with the zeros of clients not holding a coordinate. Both are weighted by the
  clients' sample counts here (the code's means are unweighted). In spdst every client holds the
  same mask, so both are FedAvg (the code sets update_mode 0 for spdst).
- Masked tensors: every prunable Conv/Linear weight under the project's `keep_first_dense` /
  `keep_last_dense` (the code masks the layers listed in its `keys/*.pt`: ResNet-18's conv
  weights, MNIST: the middle layers).
- Training: the project's SGD settings (lr, momentum 0.9, weight decay, batch size of the
  config, constant lr) for an equal-settings comparison, not the code's plain SGD with lr
  0.1 * exp(t / 1000 * ln 0.01); the momentum buffers of pruned and grown weights are zeroed.
  Client sampling is seeded (`sample_clients`), the code's is `np.random.choice` unseeded.
- Setting: small CNNs without batch norm on FedDST's pathological 2-class split (40 images per
  client, so with batch 32 two batches per epoch: stage 1 with search_epochs 10 is 20 steps, 9
  redistributions; jmwst with local_epochs 10 redistributes 9 times per round, the paper's runs
  use one local epoch and one mid-epoch step: set local_epochs=1 for that schedule), not
  ResNet-18 on Dirichlet splits with 100 clients, 10% per round.
- Heterogeneous FLASH (`hetero_client`, per-client densities) is not implemented.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from flwr.serverapp import Grid

from fedsparse.fl.sampling import sample_clients
from fedsparse.fl.strategies.base import SparseFedAvg
from fedsparse.fl.strategies.exchange import exchange
from fedsparse.methods.flash import (DST, SEARCH_STAGE, consensus_mask, dense_average,
                                     search_densities)
from fedsparse.sparse.budgets import layer_budget
from fedsparse.sparse.initial_mask import derived_seed
from fedsparse.sparse.mask import Mask
from fedsparse.sparse.ops import grow_random

START_STREAM, SEARCHED_STREAM = 37, 41
"""Seed streams of the search's random start mask and of the searched mask's positions."""
BUDGET_SLACK = 1.05
"""How far (relative) a jmwst client's mask may exceed max(global active, target) (plus one
weight per masked layer): the client DST's drift (see the module docstring)."""


class Flash(SparseFedAvg):
    """FLASH: round-0 density search, then a fixed mask (spdst) or per-round consensus (jmwst)."""

    @property
    def target_density(self) -> float:
        return 1.0 - self.cfg.mask.sparsity

    def random_mask(self, counts: dict[str, int], stream: int) -> Mask:
        """`counts[name]` active positions per masked layer, uniformly at random (seeded by the
        run's seed and `stream`), on the server device."""
        gen = torch.Generator().manual_seed(derived_seed(self.cfg.seed, stream))
        empty = Mask({n: torch.zeros(self.shapes[n], dtype=torch.bool) for n in self.masked})
        return grow_random(empty, counts, gen).to(self.device)

    def initialize(self, grid: Grid) -> None:
        """Stage 1: the density search with m clients, then the searched mask at random
        positions; the initial weights are kept."""
        opts, cfg = self.options, self.cfg
        shapes = {n: self.shapes[n] for n in self.masked}
        start = self.random_mask(layer_budget("uniform", shapes, self.target_density), START_STREAM)
        m = max(1, int(opts.search_fraction * cfg.data.num_clients))
        pids = sample_clients(cfg.seed, 0, range(cfg.data.num_clients), m)
        replies = exchange(self, grid, pids, {"stage": SEARCH_STAGE}, start)
        searched = [r.mask for r in replies if r.mask is not None]
        numels = {n: int(np.prod(s)) for n, s in shapes.items()}
        counts = search_densities(numels, searched, self.target_density, opts.rounding)
        self.set_mask(self.random_mask(counts, SEARCHED_STREAM))
        extra = self.round_info.setdefault("extra", {})
        extra["flash_search_clients"] = len(searched)
        extra["flash_search_density"] = sum(s.density() for s in searched) / len(searched)

    def updates_mask(self, server_round: int) -> bool:
        """jmwst: whether `server_round` runs the client DST and the consensus."""
        return self.options.variant == "jmwst" and (server_round - 1) % self.options.update_every == 0

    def client_instructions(self, server_round: int) -> dict[str, Any]:
        return {**super().client_instructions(server_round), DST: self.updates_mask(server_round)}

    def average(self, states: list[dict[str, torch.Tensor]], masks: list[Mask], weights: list[float]
                ) -> tuple[dict[str, torch.Tensor], Mask]:
        if self.options.average == "dense":
            return dense_average(states, masks, weights)
        return super().average(states, masks, weights)

    def reply_budget(self) -> int | None:
        """jmwst: max(global active, target) * BUDGET_SLACK + one per masked layer (the client
        DST's drift); spdst: the global mask's active count."""
        if self.options.variant != "jmwst" or self.mask is None:
            return None
        base = max(self.mask.num_active(), round(self.target_density * self.n_masked))
        return int(base * BUDGET_SLACK) + len(self.masked)

    def server_update(self, server_round: int, average: dict[str, torch.Tensor],
                      union: Mask | None) -> None:
        """Adopt the average; jmwst: record the clients' densities and, on mask rounds, adopt the
        consensus mask of the replies (a client drawn k times counts k times)."""
        self.state = average
        if self.options.variant != "jmwst":
            return
        draws = self.round_info.get("draws", {})
        masks = [r.mask for r in self.replies if r.mask is not None for _ in range(draws.get(r.pid, 1))]
        extra = self.round_info.setdefault("extra", {})
        extra["flash_client_density"] = sum(m.density() for m in masks) / len(masks)
        if union is not None:
            extra["flash_union_density"] = union.density()
        updated = self.updates_mask(server_round)
        if updated:
            opts = self.options
            self.set_mask(consensus_mask({n: average[n] for n in self.masked}, masks,
                                         self.target_density, opts.layer_counts, opts.rounding))
        extra["flash_mask_updated"] = int(updated)
