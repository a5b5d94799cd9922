"""FedRTS's client step (rules and options: fedsparse.methods.fedrts; server:
fedsparse.fl.strategies.fedrts).

Every round: masked local training, as fedsparse.train.client_update (no readjustment; the mask
never changes on the client, so only the active values go up). On adjustment rounds
(`fedrts_votes`): the dense loss gradient at the trained weights (`vote_gradient`: one random batch
as the code's `growth_data_mode="batch"`, one pass, or the last trained batch;
my_model_trainer_classification.py l.68-91) and, per masked layer, the indices of the
min(int(drop_fraction K), #inactive) inactive coordinates with the largest |gradient|, uploaded as
`extra.votes` + `extra.vote_sizes` (no gradient pass when every k is 0, e.g. at t = T_end, where
f = 0 but the code still adjusts). Metrics: `vote_grad_samples` (images in that extra forward and
backward pass) and `votes` (indices uploaded), 0 on other rounds.

Apart from fedsparse.methods.fedrts because it imports fedsparse.train.client_update, which imports
the strategy registry, which imports FedRTSOptions from fedsparse.methods.fedrts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from fedsparse.experiment import Experiment
from fedsparse.fl.strategies.registry import strategy_options
from fedsparse.methods.fedrts import VOTE_KEY, client_votes, encode_votes, vote_count
from fedsparse.sparse.mask import Mask
from fedsparse.train.client_update import ClientMethod, ClientResult, LocalRound
from fedsparse.train.local import LocalTrainer


def gradient_samples(trainer: LocalTrainer, over: str, n: int) -> int:
    """Images in the pass of `LocalTrainer.gradients(..., over)` on `n` images."""
    if over == "epoch":
        return n
    if over == "last_batch" and trainer.last_batch is not None:
        return len(trainer.last_batch)
    return min(trainer.batch_size, n)


class FedRTSClient(ClientMethod):
    """Masked local training; on adjustment rounds, the votes of the inactive coordinates."""

    def train(self, exp: Experiment, model: torch.nn.Module, mask: Mask | None, pid: int,
              server_round: int, instructions: Mapping[str, Any],
              extras: Mapping[str, np.ndarray]) -> ClientResult:
        if mask is None:
            raise ValueError("FedRTS trains a masked model: the message carried no mask")
        cfg = exp.cfg
        local = LocalRound.start(exp, model, mask, pid, server_round,
                                 float(instructions.get("proximal_mu", 0.0)))
        trainer, x, y, gen = local.trainer, local.x, local.y, local.generator
        loss = local.train(cfg.train.local_epochs)
        if not instructions.get(VOTE_KEY, False):
            return ClientResult(mask, len(y), loss, 0, metrics={"vote_grad_samples": 0.0, "votes": 0.0})
        over = strategy_options(cfg).vote_gradient
        names = list(exp.masked_names)
        fraction = float(instructions["drop_fraction"])
        if all(vote_count(mask[n], fraction) == 0 for n in names):  # f(T_end) = 0: no gradient needed
            votes, samples = {n: torch.zeros(0, dtype=torch.int64) for n in names}, 0
        else:
            votes = client_votes(mask, trainer.gradients(x, y, names, over, gen), fraction)
            samples = gradient_samples(trainer, over, len(y))
        return ClientResult(mask, len(y), loss, 0, upload=encode_votes(votes, names),
                            metrics={"vote_grad_samples": float(samples),
                                     "votes": float(sum(v.numel() for v in votes.values()))})
