"""One client's local work for a round, independent of Flower: masked training and, when told,
FedDST's mask readjustment, as the default `ClientMethod` (a method with a client step of its own
subclasses it in fedsparse/methods/). The ClientApp only translates Flower records to and from it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from fedsparse.experiment import Experiment
from fedsparse.sparse.mask import Mask
from fedsparse.train.local import LocalTrainer
from fedsparse.train.readjust import readjust_mask


@dataclass
class ClientResult:
    """What a client sends back: its trained model holds the weights; `upload` = a method's own
    arrays (sent as `extra.<name>`), `metrics` = its own per-round numbers (the server sums them
    over the round's clients into the metrics row as `client_<name>`)."""

    mask: Mask | None
    num_examples: int
    train_loss: float
    mask_changes: int
    upload: dict[str, np.ndarray] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)


class ClientMethod:
    """What a node does with a train message: `train` gets the model holding the global weights,
    the mask, the server's instructions (the message's config: `round`, `mask_version` and the
    strategy's `client_instructions`) and the arrays the server added (`extras`)."""

    def train(self, exp: Experiment, model: torch.nn.Module, mask: Mask | None, pid: int,
              server_round: int, instructions: Mapping[str, Any],
              extras: Mapping[str, np.ndarray]) -> ClientResult:
        """Masked local training, with FedDST's readjustment when told (`readjust`)."""
        return client_update(exp, model, mask, pid, server_round,
                             proximal_mu=float(instructions.get("proximal_mu", 0.0)),
                             readjust=bool(instructions.get("readjust", False)),
                             drop_fraction=float(instructions.get("drop_fraction", 0.0)))


def client_generator(seed: int, server_round: int, pid: int) -> torch.Generator:
    """The client's RNG for a round: a pure function of (seed, round, partition)."""
    return torch.Generator().manual_seed(int(np.random.SeedSequence([seed, server_round, pid])
                                             .generate_state(1)[0]))


def fixed_order(seed: int, pid: int, n: int) -> torch.Tensor:
    """Client `pid`'s batch order with `batch_order=fixed`: one seeded permutation of its `n`
    images, the same every epoch and round (the FedDST reference shuffles each client's data once
    when it builds its list of batches)."""
    gen = torch.Generator().manual_seed(int(np.random.SeedSequence([seed, pid, FIXED_ORDER_STREAM])
                                            .generate_state(1)[0]))
    return torch.randperm(n, generator=gen)


FIXED_ORDER_STREAM = 19


@dataclass
class LocalRound:
    """A client's round set up as every client step sets it up: its partition on the model's
    device, its RNG (a function of seed, round and partition), its batch order and the masked
    trainer. Random draws (batch order, augmentation) come from the CPU generator; the mask stays
    on its own device (the ClientApp's: the CPU)."""

    trainer: LocalTrainer
    x: torch.Tensor
    y: torch.Tensor
    generator: torch.Generator
    order: torch.Tensor | None

    @classmethod
    def start(cls, exp: Experiment, model: torch.nn.Module, mask: Mask | None, pid: int,
              server_round: int, proximal_mu: float = 0.0) -> LocalRound:
        cfg = exp.cfg
        device = next(model.parameters()).device
        x, y = (t.to(device) for t in exp.client_train(pid))
        trainer = LocalTrainer(model, mask, lr=cfg.train.lr, momentum=cfg.train.momentum,
                               weight_decay=cfg.train.weight_decay, batch_size=cfg.train.batch_size,
                               proximal_mu=proximal_mu, augment=cfg.data.augment,
                               double_softmax=cfg.train.double_softmax)
        order = fixed_order(cfg.seed, pid, len(y)) if cfg.train.batch_order == "fixed" else None
        return cls(trainer, x, y, client_generator(cfg.seed, server_round, pid), order)

    def train(self, epochs: int, before_step: Callable[[], None] | None = None) -> float:
        """`epochs` passes of the partition (`LocalTrainer.train_epochs`); the mean loss."""
        return self.trainer.train_epochs(self.x, self.y, epochs, self.generator,
                                         before_step=before_step, order=self.order)


def client_update(exp: Experiment, model: torch.nn.Module, mask: Mask | None, pid: int,
                  server_round: int, *, proximal_mu: float = 0.0, readjust: bool = False,
                  drop_fraction: float = 0.0) -> ClientResult:
    """Train `model` (holding the global weights) on partition `pid`; readjust the mask if asked
    (before the last `regrow_train_epochs` epochs, so regrown weights are trained), on the
    model's device (`LocalRound`)."""
    cfg = exp.cfg
    local = LocalRound.start(exp, model, mask, pid, server_round, proximal_mu)
    readjust = readjust and mask is not None
    before = cfg.train.local_epochs - cfg.readjust.regrow_train_epochs if readjust else cfg.train.local_epochs
    loss = local.train(before)
    new_mask, changes = mask, 0
    if readjust:
        assert mask is not None
        new_mask = readjust_mask(local.trainer, local.x, local.y, mask, drop_fraction, cfg, local.generator)
        changes = new_mask.changed(mask)
        local.trainer.set_mask(new_mask)
        if cfg.readjust.regrow_train_epochs:
            loss = local.train(cfg.readjust.regrow_train_epochs)
    return ClientResult(new_mask, len(local.y), loss, changes)
