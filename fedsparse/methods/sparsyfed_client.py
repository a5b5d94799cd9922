"""SparsyFed's client step (options and rules: fedsparse.methods.sparsyfed; server:
fedsparse.fl.strategies.sparsyfed).

The model arrives holding the global ω (zeros outside the global mask, the union of the last
round's client supports). Local training (`local_epochs`, the platform's SGD) runs with
`SparsyFedForward` active: every masked Conv/Linear computes with θ = sign(ω)|ω|^β and, with
`activation_pruning`, takes its weight gradient from the input's top (1 - weight sparsity)
fraction; MaskedOptimizer keeps the received mask (zeros stay zero; with β > 1 their gradient is
0 anyway). After training, one magnitude prune of |ω| to density 1 - sparsity (global ranking by
default, `prune_scope`), the rest zeroed (train_test.py `get_train_and_prune` l.379-405). The
reply carries that mask's positions whenever it differs from the received one (always, except
when the prune keeps the whole received support, e.g. sparsity 0).

Metric `activation_keep`: the mean kept fraction of the Conv/Linear inputs over the round's
training calls (1.0 without activation pruning), the method's extra compute/memory indicator.
Dense kernels do not realise that saving here: the pruned input is a dense tensor with zeros, and
the Top-K selection (a kthvalue per layer and batch) and the pow of every masked weight per step
are extra work.

Apart from fedsparse.methods.sparsyfed because it imports fedsparse.train.client_update, which
imports fedsparse.experiment and so the strategy registry; the registry imports SparsyFedOptions
from fedsparse.methods.sparsyfed, so that module cannot import it back.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from fedsparse.experiment import Experiment
from fedsparse.fl.strategies.registry import strategy_options
from fedsparse.methods.sparsyfed import SparsyFedForward, prune_to_density
from fedsparse.sparse.mask import Mask
from fedsparse.train.client_update import ClientMethod, ClientResult, LocalRound


class SparsyFedClient(ClientMethod):
    """Re-parameterised, activation-pruned local training, then a magnitude prune of ω."""

    def train(self, exp: Experiment, model: torch.nn.Module, mask: Mask | None, pid: int,
              server_round: int, instructions: Mapping[str, Any],
              extras: Mapping[str, np.ndarray]) -> ClientResult:
        if mask is None:
            raise ValueError("SparsyFed trains a masked model: the message carried no mask")
        cfg = exp.cfg
        opts = strategy_options(cfg)
        names = list(exp.masked_names)
        local = LocalRound.start(exp, model, mask, pid, server_round,
                                 float(instructions.get("proximal_mu", 0.0)))
        with SparsyFedForward(model, names, opts) as forward:
            loss = local.train(cfg.train.local_epochs)
        params = dict(model.named_parameters())
        pruned = prune_to_density({n: params[n].detach() for n in names}, names,
                                  1.0 - cfg.mask.sparsity, opts.prune_scope)
        # ω is exactly 0 outside the received mask: a position there could only be kept as a
        # zero (when fewer weights are non-zero than the budget), so it is left out
        new_mask = Mask({n: pruned[n].to(mask[n].device) & mask[n] for n in names})
        new_mask.apply(model)
        return ClientResult(new_mask, len(local.y), loss, new_mask.changed(mask),
                            metrics={"activation_keep": forward.mean_keep()})
