"""FLASH's client step (options and rules: fedsparse.methods.flash; server:
fedsparse.fl.strategies.flash).

- Round 0, `stage = search` (the stage-1 density search, a few clients): `search_epochs` local
  epochs of the FLASH client DST from the server's random mask; the reply carries the searched
  mask (positions) and, because a reply must carry the values of its mask to be valid, the
  trained active values and dense tensors too, which the server discards (the code also returns
  the weights and drops them, manager.py 108-113).
- Rounds with `flash_dst` (jmwst): `local_epochs` of masked training with the FLASH client DST
  (`redistribute`) after every epoch but the last, or once mid-epoch with one local epoch
  (training/client.py 84-101); the prune rate decays linearly per optimizer step from
  `prune_rate` to 0 over the local steps (core.py 31-41); the growth adjustment starts at 0 for
  each local training (the code builds a new `Masking` per update). Grown weights start at 0 with
  zero optimizer state. The reply carries the client's mask (positions) with its values.
- Other rounds (spdst; jmwst between mask updates): the default masked training
  (fedsparse.train.client_update).

Batch order and augmentation draw from the round's client generator exactly as the default
training does (the redistribution's random growth has its own seeded stream), so a round with no
redistribution point trains the same batches. Metric `flash_redistributions`: the DST steps run
(each sorts every masked layer's |w| once; no extra memory beyond one mask).

This module is apart from fedsparse.methods.flash because it imports
fedsparse.train.client_update, which imports fedsparse.experiment and so the strategy registry;
the registry imports FlashOptions from fedsparse.methods.flash, so that module cannot import it
back.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from fedsparse.experiment import Experiment
from fedsparse.fl.strategies.registry import strategy_options
from fedsparse.methods.flash import DST, SEARCH_STAGE, dst_points, prune_rate_at, redistribute
from fedsparse.sparse.mask import Mask
from fedsparse.sparse.ops import regrow_init
from fedsparse.train.client_update import ClientMethod, ClientResult, LocalRound

DST_STREAM = 31
"""Seed stream of the redistribution's random growth (apart from the batch order's)."""


class FlashClient(ClientMethod):
    """The density search when asked (round 0), masked training with the FLASH client DST on
    jmwst mask rounds, else the default masked training."""

    def train(self, exp: Experiment, model: torch.nn.Module, mask: Mask | None, pid: int,
              server_round: int, instructions: Mapping[str, Any],
              extras: Mapping[str, np.ndarray]) -> ClientResult:
        if mask is None:
            raise ValueError("FLASH trains a masked model: the message carried no mask")
        options = strategy_options(exp.cfg)
        if instructions.get("stage") == SEARCH_STAGE:
            return train_with_dst(exp, model, mask, pid, server_round, options.search_epochs,
                                  options.prune_rate, proximal_mu=0.0)
        if instructions.get(DST, False):
            return train_with_dst(exp, model, mask, pid, server_round, exp.cfg.train.local_epochs,
                                  options.prune_rate,
                                  proximal_mu=float(instructions.get("proximal_mu", 0.0)))
        return super().train(exp, model, mask, pid, server_round, instructions, extras)


def dst_generator(seed: int, server_round: int, pid: int) -> torch.Generator:
    """The redistribution's RNG for a client's round: a pure function of (seed, round, pid)."""
    return torch.Generator().manual_seed(int(np.random.SeedSequence([seed, server_round, pid, DST_STREAM])
                                             .generate_state(1)[0]))


def train_with_dst(exp: Experiment, model: torch.nn.Module, mask: Mask, pid: int, server_round: int,
                   epochs: int, prune_rate: float, *, proximal_mu: float) -> ClientResult:
    """`epochs` of masked local training on partition `pid` with the FLASH client DST at
    `dst_points` (prune rate `prune_rate_at` the step, target count (1 - sparsity) * numel per
    layer); returns the final mask, the mean training loss over all steps and the number of
    positions changed from `mask`."""
    cfg = exp.cfg
    local = LocalRound.start(exp, model, mask, pid, server_round, proximal_mu)
    trainer, x, y, gen, fixed = local.trainer, local.x, local.y, local.generator, local.order
    growth = dst_generator(cfg.seed, server_round, pid)
    bs = cfg.train.batch_size
    batches = -(-len(y) // bs)
    total_steps = batches * epochs
    points = dst_points(batches, epochs)
    density = 1.0 - cfg.mask.sparsity
    baseline = {n: density * mask[n].numel() for n in mask}
    params = dict(model.named_parameters())
    current, adj, history = mask, 0.0, []
    loss_sum, steps = 0.0, 0
    for epoch in range(epochs):
        # the same draw as LocalTrainer.train_epochs makes at the start of an epoch
        order = torch.randperm(len(y), generator=gen) if fixed is None else fixed
        first = epoch * batches
        cuts = [p - first for p in points if first < p <= first + batches]
        start = 0
        for cut in sorted({*cuts, batches}):
            chunk = order[start * bs:cut * bs]
            if len(chunk):  # the epoch's batches [start, cut), cut at the same boundaries
                loss = trainer.train_epochs(x[chunk], y[chunk], 1, gen,
                                            order=torch.arange(len(chunk)))
                loss_sum += loss * (cut - start)
                steps += cut - start
            if cut in cuts:
                new, adj = redistribute(current, {n: params[n].detach() for n in current},
                                        prune_rate_at(first + cut, total_steps, prune_rate),
                                        baseline, adj, growth, history)
                regrow_init(model, current, new, init="zero")
                trainer.set_mask(new)
                current = new
            start = cut
    return ClientResult(current, len(y), loss_sum / steps if steps else 0.0, current.changed(mask),
                        metrics={"flash_redistributions": float(len(points))})
