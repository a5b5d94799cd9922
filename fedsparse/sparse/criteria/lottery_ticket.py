"""`lottery`: lottery-ticket scores from iterative magnitude pruning with rewind on the batches.

The criterion trains a private copy of the model on the given batches (the server's proxy set with
`scoring=server`, a client's own data with `scoring=federated`), prunes by magnitude, rewinds the
survivors to their initial values and repeats (`fedsparse/sparse/lottery.py`), down to
`final_density` over `iterations` rounds. A weight's score is the number of rounds it survived,
plus a tie-break in [0, 1): its trained magnitude in the round it was pruned (the last round for
final survivors), divided by the layer's largest such magnitude. Keeping the top k of these scores
is the ticket at any density between 1 and `final_density`, and, with the model at its initial
values, training the kept weights is the "rewind to initialisation" lottery ticket.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fedsparse.plugin_options import option
from fedsparse.sparse.budgets import BUDGETS
from fedsparse.sparse.criteria.gradients import finish, named_weights, require_batches
from fedsparse.sparse.criteria.registry import CRITERIA, Batches
from fedsparse.sparse.lottery import iterative_magnitude_pruning
from fedsparse.sparse.mask import Mask
from fedsparse.sparse.masked_optim import MaskedOptimizer
from fedsparse.sparse.select import SCOPES


@dataclass(frozen=True)
class LotteryOptions:
    """Options of `lottery` (config `criterion_options`): its iterative magnitude pruning."""

    iterations: int = option(5, "prune-train-rewind rounds", lo=1, hi=1000)
    final_density: float = option(0.02, "kept fraction after the last round", lo=0, hi=1,
                                  lo_open=True)
    epochs: int = option(3, "training passes over the batches per round", lo=1, hi=10_000)
    lr: float = option(0.05, "SGD learning rate of that training", lo=0, lo_open=True)
    momentum: float = option(0.9, "SGD momentum of that training", lo=0, hi=1, hi_open=True)
    scope: str = option("layer", "magnitude ranking per layer or across layers", choices=SCOPES)
    budget: str = option("erk", "per-layer kept counts with scope=layer", choices=BUDGETS.names)


@CRITERIA.register("lottery", options=LotteryOptions)
def lottery_scores(model: nn.Module, names: list[str], batches: Batches | None,
                   mask: Mask | None = None, generator: torch.Generator | None = None,
                   iterations: int = 5, final_density: float = 0.02, epochs: int = 3,
                   lr: float = 0.05, momentum: float = 0.9, scope: str = "layer",
                   budget: str = "erk") -> dict[str, Tensor]:
    """Survival count + tie-break (see the module docstring). Each IMP round trains `epochs`
    passes over `batches` (order shuffled with `generator`) with masked SGD (`lr`, `momentum`);
    pruning follows `scope`/`budget` as in `iterative_magnitude_pruning`. `model` is untouched."""
    batches = require_batches("lottery", batches)
    named_weights(model, names)  # unknown names -> ConfigError
    work = copy.deepcopy(model)
    params = dict(work.named_parameters())
    total = sum(params[n].numel() for n in names)
    final_density = min(1.0, max(final_density, 2 * len(names) / total))  # >= ~1 weight per layer
    trained: list[dict[str, Tensor]] = []

    def train_fn(net: nn.Module, current: Mask) -> None:
        opt = MaskedOptimizer(torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum), net, current)
        net.train()
        device = next(net.parameters()).device
        for _ in range(epochs):
            order = torch.randperm(len(batches), generator=generator).tolist()
            for i in order:
                x, y = batches[i]
                opt.zero_grad()
                F.cross_entropy(net(x.to(device)), y.to(device)).backward()
                opt.step()
        trained.append({n: params[n].detach().abs().cpu().clone() for n in names})

    with torch.random.fork_rng(devices=[]):  # dropout in training must not move the global RNG
        _, survival = iterative_magnitude_pruning(work, names, train_fn, final_density,
                                                  iterations, scope=scope, budget=budget)
    out = {}
    for n in names:
        stacked = torch.stack([t[n] for t in trained])  # (iterations, *shape)
        idx = survival[n].clamp(max=iterations - 1).unsqueeze(0)
        tie = stacked.gather(0, idx).squeeze(0)
        tie = tie / (float(tie.max()) * (1 + 1e-6) + 1e-30)
        out[n] = (survival[n].float() + tie).to(params[n].device)
    return finish(out, mask)
