"""`pffdst`: PFFDST (Li, Yang, Guo, Yu, Qin, Zhang, "An Efficient and Accurate Dynamic Sparse
Training Framework Based on Parameter-Freezing", AAAI 2025, doi 10.1609/aaai.v39i17.34019),
"Algorithm 1: Mask readjustment on the server with differential sparsity" and "Algorithm 2:
Parameter-freezing-based dynamic sparse training" (section not verified: the main text was not
available; hyper-parameters from its Appendix Table 1). One global model, final density
d = 1 - sparsity, d1 = d / 2 per layer:
- Stage 1 (rounds up to `freeze_at` x R): the mask holds d1 + f per layer (f = `differential` x
  d1); every `differential_every` rounds up to `differential_until` x R the server drops the f
  active weights of smallest |w| per layer and regrows f at random (weights 0); at
  `differential_until` x R it drops f only (back to d1). Clients train the global mask.
- The freeze (after round floor(`freeze_at` x R)): F = the global mask and its values; d1 new
  weights per layer T are drawn at random outside F (weights 0); global mask F | T.
- Stage 2: clients train with F's values restored after every step and upload T's values only;
  the server averages T and writes F's values back.
The rules, the options and their deviations from the code: fedsparse/methods/pffdst.py; the client
step: fedsparse/methods/pffdst_client.py.

Public code followed: Dawns14/pffdst @ f48ff49, `dst.py` l.96-119 (flags), 496 (initial mask),
516-526 (differential readjust), 537-557 (freeze and grow), 742-757 (server: frozen values
restored), 365-370 (client: `reset_weights` after each step); `models.py` l.254-379.

Flow here:
- `initialize`: the per-layer budget at the final density (`budget`, the paper configs'
  `feddst_erk`), d1 and f counts (`stage_counts`); the initial mask keeps the d1 + f weights of
  highest score per layer under the configured criterion (magnitude of the seeded init in the
  methods.yaml entry, as the code), scored as the project's initial masks are (the server's proxy
  set, or the clients with `scoring=federated`).
- `server_update(t)`: adopt the average (F's values restored once frozen), then the differential
  action of round t, then the freeze if t is the freeze round (the code acts at the start of its
  0-based round t: the same moment). The freeze always freezes d1 per layer: if the drop round
  never came (floor(differential_until x R) = 0, e.g. 3 rounds), f is dropped by magnitude at the
  freeze (event 5). Random draws: a generator seeded by (seed, t).
- Wire: the download carries the values of the whole global mask (F included) and, in stage 2,
  `extra.frozen_bits` (1 bit per active weight); replies carry T's values without positions.
- Row (`extra`, after the round's update): `frozen_active` (|F|, 0 before the freeze),
  `trainable_active` (active weights clients train and upload), `density`, `pffdst_event`
  (0 none, 1 readjust, 2 drop, 3 freeze, 5 drop and freeze); client metric
  `client_frozen_copy_bytes`.

Deviations, and why (see also fedsparse/methods/pffdst.py):
- F's values are downloaded every stage-2 round with the others, and F itself as 1 bit per active
  weight: nodes here keep only the global mask between rounds (the paper's communication count
  assumes clients cache F and its values, the code's dl cost excludes them). Uploads are T only,
  as in the paper.
- The frozen model is the current global model, not the code's best-by-test-accuracy snapshot.
- f per layer proportional to the layer's d1 count (`differential_counts=budget`, default) rather
  than the code's int(f * numel) per layer, which empties layers whose ERK count is below it.
- Final density d (d1 frozen + d1 grown); the code grows d1 + f and never drops the extra f
  (final density 1.25 d): `stage2_extra=true`.
- The initial mask: exact per-layer counts d1 + f (d1 = budget // 2) ranked by the criterion; the
  code prunes to the ERK sparsity at density d1 + f. Only per-layer unstructured selection from
  the criterion's scores (scope=layer, granularity=unstructured, input_keep=1, no mask
  ablation); with SynFlow, its iterative pruning to those counts, as every initial mask here.
- Clients sampled as the project does (without replacement unless sample_with_replacement);
  the code samples with replacement.
- Setting: small CNNs without batch norm (cifar10_net is the paper's "LeNet", FedDST's CIFAR10Net;
  PFFDST has no BN step, so nothing changes), this project's pathological 2-class split (the paper:
  Dirichlet 0.1) and SGD settings; clients' local test accuracy of the global model is reported
  as for every method (the paper's headline for LeNet is the best over rounds).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from flwr.serverapp import Grid

from fedsparse.experiment import Experiment
from fedsparse.fl.strategies.base import SparseFedAvg
from fedsparse.fl.strategies.initial_mask import initial_mask
from fedsparse.methods.pffdst import (FROZEN_BITS, differential_readjust, freeze_and_grow,
                                      freeze_counts, frozen_bits, is_differential_round,
                                      is_freeze_round, reset_readjusted, restore_frozen,
                                      stage_counts)
from fedsparse.sparse.budgets import layer_budget
from fedsparse.sparse.mask import Mask

SERVER_STREAM = 23
EVENTS = {"readjust": 1, "drop": 2}
FREEZE_EVENT = 3


class PFFDST(SparseFedAvg):
    """Two-stage sparse FedAvg: server readjustment with differential sparsity, then frozen
    sub-network plus trainable growth."""

    def __init__(self, exp: Experiment, device: torch.device, node_of: Mapping[int, int]) -> None:
        super().__init__(exp, device, node_of)
        numels = {n: int(np.prod(self.shapes[n])) for n in self.masked}
        self.budget = layer_budget(self.cfg.mask.budget, {n: self.shapes[n] for n in self.masked},
                                   1.0 - self.cfg.mask.sparsity)
        self.d1, self.f = stage_counts(self.budget, numels, self.options.differential,
                                       self.options.differential_counts)
        self.frozen: Mask | None = None
        self.frozen_values: dict[str, torch.Tensor] = {}
        self._bits: tuple[int, np.ndarray] | None = None  # (mask version, frozen bits)

    # ---------------------------------------------------------------- set-up
    def initialize(self, grid: Grid) -> None:
        """The stage-1 mask: the d1 + f weights of each layer ranked highest by the criterion
        (the run's initial-mask scoring, with these counts in place of the budget's)."""
        self.set_mask(initial_mask(self, grid, counts={n: self.d1[n] + self.f[n] for n in self.masked}))

    # ---------------------------------------------------------------- rounds
    @property
    def trainable(self) -> Mask | None:
        """The part of the global mask clients train and upload: T = mask & ~F (the whole mask
        before the freeze)."""
        if self.mask is None or self.frozen is None:
            return self.mask
        return Mask({n: m & ~self.frozen[n] for n, m in self.mask.items()})

    def reply_mask(self) -> Mask | None:
        return self.trainable

    def download_extras(self, server_round: int, pid: int) -> dict[str, np.ndarray]:
        """Stage 2: `frozen_bits`, F as one bit per active weight of the global mask."""
        if self.frozen is None or self.mask is None:
            return {}
        if self._bits is None or self._bits[0] != self.mask_version:
            self._bits = (self.mask_version, frozen_bits(self.mask, self.frozen, self.masked))
        return {FROZEN_BITS: self._bits[1]}

    def generator(self, server_round: int) -> torch.Generator:
        """The server's random draws after round `server_round`: seeded by (seed, round)."""
        seed = np.random.SeedSequence([self.cfg.seed, server_round, SERVER_STREAM]).generate_state(1)[0]
        return torch.Generator().manual_seed(int(seed))

    def server_update(self, server_round: int, average: dict[str, torch.Tensor],
                      union: Mask | None) -> None:
        """Adopt the average (F's values written back), then the round's differential action
        and the freeze (fedsparse.methods.pffdst's schedule)."""
        assert self.mask is not None
        self.state = average
        if self.frozen is not None:
            restore_frozen(self.state, self.frozen, self.frozen_values)
        rounds, opts = self.cfg.train.rounds, self.options
        event = 0
        gen = self.generator(server_round)
        if action := is_differential_round(server_round, rounds, opts):
            weights = {n: self.state[n] for n in self.masked}
            out = differential_readjust(self.mask, weights, self.f, gen, grow=action == "readjust",
                                        frozen=self.frozen)
            reset_readjusted(weights, out)
            self.set_mask(out.mask)
            event = EVENTS[action]
        if is_freeze_round(server_round, rounds, opts) and self.frozen is None:
            excess = {n: max(0, int(self.mask[n].sum()) - self.d1[n]) for n in self.masked}
            if any(excess.values()):  # the drop round never came (R_end = 0): drop f now
                weights = {n: self.state[n] for n in self.masked}
                out = differential_readjust(self.mask, weights, excess, gen, grow=False)
                reset_readjusted(weights, out)
                self.set_mask(out.mask)
                event = EVENTS["drop"]
            frozen, grown = freeze_and_grow(self.mask, freeze_counts(self.d1, self.f, opts.stage2_extra),
                                            gen)
            self.frozen = frozen
            self.frozen_values = {n: self.state[n].detach().clone() for n in self.masked}
            self.set_mask(frozen.union(grown))
            event += FREEZE_EVENT
        active = self.mask.num_active()
        frozen_active = self.frozen.num_active() if self.frozen is not None else 0
        self.round_info.setdefault("extra", {}).update(
            {"frozen_active": frozen_active, "trainable_active": active - frozen_active,
             "density": self.mask.density(), "pffdst_event": event})

    # ---------------------------------------------------------------- checkpointing
    def state_dict(self) -> dict[str, Any]:
        """The base state plus F (`frozen_mask/<name>`) and its values (`frozen/<name>`)."""
        state = super().state_dict()
        if self.frozen is not None:
            state["tensors"].update({f"frozen_mask/{n}": m.cpu() for n, m in self.frozen.items()})
            state["tensors"].update({f"frozen/{n}": t.detach().cpu()
                                     for n, t in self.frozen_values.items()})
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        tensors = state["tensors"]
        super().load_state_dict({**state, "tensors": {k: v for k, v in tensors.items()
                                                      if not k.startswith(("frozen_mask/", "frozen/"))}})
        masks = {n: tensors.get(f"frozen_mask/{n}") for n in self.masked}
        values = {n: tensors.get(f"frozen/{n}") for n in self.masked}
        present = [n for n in self.masked if masks[n] is not None]
        if not present:
            self.frozen, self.frozen_values = None, {}
            return
        if len(present) != len(self.masked) or any(
                values[n] is None or masks[n].shape != self.shapes[n] or masks[n].dtype != torch.bool
                or values[n].shape != self.shapes[n] for n in self.masked):
            raise ValueError("checkpoint frozen sub-network does not fit the model's masked tensors")
        self.frozen = Mask({n: masks[n].to(self.device) for n in self.masked})
        self.frozen_values = {n: values[n].to(self.device) for n in self.masked}
        self._bits = None
