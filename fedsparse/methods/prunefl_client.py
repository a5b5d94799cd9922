"""PruneFL's client step (options and rules: fedsparse.methods.prunefl; server:
fedsparse.fl.strategies.prunefl).

- Round 0, `stage = initial_pruning` (one client): from the dense model, `ip_rounds` times: one
  round of local training (or `ip_steps` SGD steps) on its own data accumulating squared
  gradients, then the adaptive rule (dtp decayed by the step index, growth capped at the density
  cap); replies with the pruned weights and mask (AdaptiveServer.initial_pruning, adaptive.py
  l.125-182, run at a client).
- Rounds: masked local training (as fedsparse.train.client_update); with `collect_sq_grad` the
  dense loss gradient of every parameter is squared after each backward pass and summed, each
  step weighted by its batch's size (the official client adds grad**2 * num_proc_data,
  adaptive.py l.301-307, for the gradient summed over the round's steps); the masked tensors' sums
  travel in full as `extra.sq_grad` (float32), the other parameters' as one float each in
  `extra.sq_grad_rest`. The training itself is the same with or without collecting.

This module is apart from fedsparse.methods.prunefl because it imports
fedsparse.train.client_update, which imports fedsparse.experiment and so the strategy registry;
the registry imports PruneFLOptions from fedsparse.methods.prunefl, so that module cannot import
it back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch

from fedsparse.experiment import Experiment
from fedsparse.fl.strategies.registry import strategy_options
from fedsparse.methods.prunefl import (COLLECT, INITIAL_STAGE, SQ_GRAD, SQ_GRAD_REST,
                                       SquaredGradients, adaptive_mask, decay, density_cap,
                                       layer_coefficients, rest_names, round_constant)
from fedsparse.sparse.cost import output_positions
from fedsparse.sparse.mask import Mask
from fedsparse.train.client_update import ClientMethod, ClientResult, LocalRound
from fedsparse.train.local import LocalTrainer


class PruneFLClient(ClientMethod):
    """Initial pruning when asked (round 0), else masked training that collects squared
    gradients on reconfiguration rounds."""

    def train(self, exp: Experiment, model: torch.nn.Module, mask: Mask | None, pid: int,
              server_round: int, instructions: Mapping[str, Any],
              extras: Mapping[str, np.ndarray]) -> ClientResult:
        if mask is None:
            raise ValueError("PruneFL trains a masked model: the message carried no mask")
        if instructions.get("stage") == INITIAL_STAGE:
            return initial_pruning(exp, model, mask, pid)
        return train_round(exp, model, mask, pid, server_round,
                           proximal_mu=float(instructions.get("proximal_mu", 0.0)),
                           collect=bool(instructions.get(COLLECT, False)))


def _collector(model: torch.nn.Module, names: list[str], trainer: LocalTrainer
               ) -> tuple[SquaredGradients, Callable[[], None]]:
    """An accumulator of |batch| * g**2 for `names` and the `before_step` hook that feeds it."""
    params = dict(model.named_parameters())
    acc = SquaredGradients(names)

    def hook() -> None:
        assert trainer.last_batch is not None
        acc.add({n: params[n].grad if params[n].grad is not None else torch.zeros_like(params[n])
                 for n in names}, weight=float(len(trainer.last_batch)))

    return acc, hook


def _uploads(acc: SquaredGradients, model: torch.nn.Module, masked: list[str], rest: list[str]
             ) -> dict[str, np.ndarray]:
    """`extra.sq_grad` and `extra.sq_grad_rest` from the accumulator (zeros if it saw no step)."""
    total = acc.total
    params = dict(model.named_parameters())
    full = [total[n] if n in total else torch.zeros_like(params[n]) for n in masked]
    sq = np.concatenate([t.detach().reshape(-1).float().cpu().numpy() for t in full])
    other = [float(total[n].sum()) if n in total else 0.0 for n in rest]
    return {SQ_GRAD: sq.astype(np.float32), SQ_GRAD_REST: np.asarray(other, dtype=np.float32)}


def train_round(exp: Experiment, model: torch.nn.Module, mask: Mask, pid: int, server_round: int,
                *, proximal_mu: float, collect: bool) -> ClientResult:
    """One round of masked local training (the same draws as fedsparse.train.client_update);
    with `collect`, also the squared-gradient uploads. Metrics: `sq_grad_steps` (steps whose
    gradients were squared and summed) and `sq_grad_memory_bytes` (the accumulators' size)."""
    cfg = exp.cfg
    local = LocalRound.start(exp, model, mask, pid, server_round, proximal_mu)
    masked, rest = list(exp.masked_names), rest_names(model, exp.masked_names)
    acc, hook = _collector(model, masked + rest, local.trainer) if collect else (None, None)
    loss = local.train(cfg.train.local_epochs, before_step=hook)
    y = local.y
    steps = cfg.train.local_epochs * -(-len(y) // cfg.train.batch_size) if collect else 0
    upload = _uploads(acc, model, masked, rest) if acc is not None else {}
    held = sum(t.numel() for t in acc.total.values()) if acc is not None else 0
    return ClientResult(mask, len(y), loss, 0, upload=upload,
                        metrics={"sq_grad_steps": float(steps), "sq_grad_memory_bytes": 4.0 * held})


def step_indices(n: int, count: int, generator: torch.Generator) -> torch.Tensor:
    """`count` sample indices: shuffled passes over n samples, concatenated and cut (the batches
    of `count / batch_size` SGD steps)."""
    passes = -(-count // n)
    return torch.cat([torch.randperm(n, generator=generator) for _ in range(passes)])[:count]


def initial_pruning(exp: Experiment, model: torch.nn.Module, mask: Mask, pid: int) -> ClientResult:
    """The initial pruning stage on partition `pid`, starting from `mask` (the dense mask): each
    of `ip_rounds` adaptive steps follows one round of local training (`ip_steps` unset, the
    run's batch order) or `ip_steps` SGD steps over shuffled passes. Metric `ip_steps`: the SGD
    steps it ran."""
    cfg = exp.cfg
    options = strategy_options(cfg)
    local = LocalRound.start(exp, model, mask, pid, 0)
    trainer, x, y, gen, order = local.trainer, local.x, local.y, local.generator, local.order
    device = x.device
    masked, rest = list(exp.masked_names), rest_names(model, exp.masked_names)
    params = dict(model.named_parameters())
    positions = output_positions(model, (exp.data.in_channels, *exp.data.image_size))
    cap = int(density_cap(options, cfg.mask.sparsity) * mask.numel())
    start, losses, steps = mask, [], 0
    for k in range(options.ip_rounds):
        acc, hook = _collector(model, masked + rest, trainer)
        if options.ip_steps is None:
            losses.append(trainer.train_epochs(x, y, cfg.train.local_epochs, gen, before_step=hook,
                                               order=order))
            steps += cfg.train.local_epochs * -(-len(y) // cfg.train.batch_size)
        else:
            idx = step_indices(len(y), options.ip_steps * cfg.train.batch_size, gen).to(device)
            losses.append(trainer.train_epochs(x[idx], y[idx], 1, gen, before_step=hook,
                                               order=torch.arange(len(idx), device=device)))
            steps += options.ip_steps
        total = acc.total
        coeff = layer_coefficients(positions, mask, cfg.comm.codec, cfg.comm.value_dtype, options)
        mask = adaptive_mask(mask, {n: params[n].detach().cpu() for n in masked},
                             {n: total[n].cpu() for n in masked}, coeff,
                             round_constant(coeff, mask, options.time_constant),
                             decay(options.max_dec, options.max_dec_half_life, k),
                             extra_numerator=sum(float(total[n].sum()) for n in rest),
                             max_active=cap)
        trainer.set_mask(mask)
    return ClientResult(mask, len(y), sum(losses) / len(losses), mask.changed(start),
                        metrics={"ip_steps": float(steps)})
