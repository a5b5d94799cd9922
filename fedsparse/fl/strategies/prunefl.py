"""`prunefl`: PruneFL (Jiang et al., "Model Pruning Enables Efficient Federated Learning on Edge
Devices", IEEE TNNLS 2022, arXiv 1909.12326v5): initial pruning at one client (Sec. III-A, section
not verified), then FedAvg on the mask, which the server re-solves every few rounds from the
clients' accumulated squared gradients against a per-weight cost: keep the active weights of
largest magnitude (at most a fraction dtp of a layer's leave), add weights in decreasing
g^2 / t order while that beats sum g^2 / (c + sum t) (Sec. IV, section not verified).

Public code followed: jiangyuang/PruneFL @ b499d3a: `bases/fl/simulation/adaptive.py`
(`AdaptiveServer.initial_pruning` l.125-182, `AdaptiveServer.main` l.184-251 with the dtp decay
l.221-231, `AdaptiveClient.main` l.277-320, `AdaptiveFL.check_adj_round` l.385-396) and
`control/algorithm.py` (`process_layer`, `architecture_search`, `main_control`, l.7-114). The
rule, the options and the client step: fedsparse/methods/prunefl.py, prunefl_client.py.

Flow here:
- Round 0 (`initial=client`): one seeded client (`sample_clients(seed, 0, ..., 1)`) gets the dense
  model and runs the initial pruning (`ip_rounds` x (one round of local training, adaptive
  rule)); the server adopts its weights and mask. Both transfers are in the ledger at round 0, its time in
  `stage_client_time_s`, its steps in `prunefl_ip_steps`. `initial=criterion`: the project's
  initial mask (initial_mask settings) instead.
- Rounds: clients train with the global mask fixed. On reconfiguration rounds ((t - 1) %
  adjust_every == 0 and t < adjust_until, FedDST's schedule, by default the top-level
  readjust_every / readjust_until) they also upload their squared gradients; the server sums
  them over the replies (a client drawn k times counts k times), runs the rule on the averaged
  weights with dtp = max_dec * 0.5 ** ((t - 1) / max_dec_half_life), growth capped at
  `max_density` (default 1 - sparsity), and adopts the new mask (grown weights start at 0; the
  new positions go to each client with its next message). Row: `prunefl_reconfigured` (1/0),
  `density`, `client_sq_grad_steps`, `client_sq_grad_memory_bytes`.
- Bytes: the reconfiguration upload is the masked tensors' g^2 in full, dense float32 (4 bytes
  per masked weight per client, whatever the density), plus 4 bytes per other parameter tensor:
  counted as serialized, like everything else.

Deviations, and why:
- Costs: per-weight times come from a cost model (`cost_coefficients`: output positions per
  weight from fedsparse/sparse/cost.py, normalised to mean 1, + bits per weight sent: the value
  dtype's bits + the run codec's position bits per weight of the current mask, / 32) instead of
  per-layer times measured on Raspberry Pis. The constant c (a round's time that does not depend
  on the active weights) is `time_constant` x the dense masked layers' time: 0.14 by default,
  the share the official FEMNIST Conv-2 config gives it (its CIFAR-10 VGG-11 config: 0.71); our
  models are Conv-2-like. With c near 0 each reconfiguration would shrink the model by ~dtp.
- Density cap: by default 1 - sparsity, so that PruneFL never exceeds the comparison's density
  budget; the paper's code has no cap unless `-m max_density` is given (set max_density=1.0).
- Schedule: reconfiguration at rounds 1, 1 + adjust_every, ... below adjust_until (FedDST's, so
  that both reconfigure on the same rounds); the code's first reconfiguration comes ADJ_INTERVAL
  rounds after the start, then every ADJ_INTERVAL (= 50 rounds of 5 local iterations; a round here
  is `local_epochs` epochs, much more local work). No reconfiguration from adjust_until on (the
  code reconfigures until the end).
- Squared gradients: per step, g_s^2 weighted by the batch size, summed over the reconfiguration
  round's local steps only. The code adds (sum of the round's gradients)^2 * num_proc_data per
  round (in fact twice the last step's gradient, squared: `accumulated_grad` aliases
  `param.grad`), kept across every round since the last reconfiguration; here clients are sampled
  and hold no state between rounds. Clients' sums are summed, not averaged, as in the code.
- Numerator of the parameters that are not pruned: all non-masked parameters (biases, layers
  kept dense), one float each; the code counts the biases of prunable layers and the weights
  and biases of non-prunable ones, the same set for these BN-free models.
- Initial pruning: at a client over its own data (the code runs it in the server process on
  client 0's first 200 images), a fixed number `ip_rounds` of adaptive steps, each after one
  round of local training (default 5, as the FedDST repository's baseline Dawns14/pffdst
  `prunefl.py` l.312-333; or every `ip_steps` SGD steps), without the code's accuracy gate
  (ADJ_THR_FACTOR), early stop (IP_THR, 5 adjustments) or its budget of 1000 rounds; dtp decays
  with the step index (the code uses the constant MAX_DEC_DIFF there; with half-life 10000 the
  same). From the dense model each step removes at most dtp of a layer and growth stops at the
  cap, so the stage ends at a density of about max(0.7 ** ip_rounds, cap) with the defaults
  (0.17 after 5): with a budget below that, the first reconfigurations keep pruning by dtp until
  the cap is reached.
- dtp at round t uses t - 1 (the code's 0-based round index).
- The setting (small CNNs without BN, the LotteryFL-style pathological split, this project's SGD
  settings, sampled clients) is this project's, not the paper's (VGG-11 on IID CIFAR-10, 10
  clients all participating, batch 20, lr 0.1 with step decay).
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import numpy as np
import torch
from flwr.serverapp import Grid

from fedsparse.fl.sampling import sample_clients
from fedsparse.fl.strategies.base import SparseFedAvg
from fedsparse.fl.strategies.exchange import exchange
from fedsparse.fl.strategies.initial_mask import initial_mask
from fedsparse.methods.prunefl import (COLLECT, INITIAL_STAGE, SQ_GRAD, SQ_GRAD_REST, adaptive_mask,
                                       decay, density_cap, layer_coefficients, reconfigures,
                                       rest_names, round_constant)
from fedsparse.sparse.cost import output_positions
from fedsparse.sparse.mask import Mask

log = logging.getLogger("fedsparse")


class PruneFL(SparseFedAvg):
    """FedAvg on a mask that the server reconfigures with PruneFL's adaptive rule."""

    def initialize(self, grid: Grid) -> None:
        if self.options.initial == "criterion":
            self.set_mask(initial_mask(self, grid))
            return
        pid = sample_clients(self.cfg.seed, 0, range(self.cfg.data.num_clients), 1)[0]
        dense = Mask({n: torch.ones(self.shapes[n], dtype=torch.bool, device=self.device)
                      for n in self.masked})
        reply = exchange(self, grid, [pid], {"stage": INITIAL_STAGE}, dense)[0]
        self.state = {n: t.to(self.device) for n, t in reply.state.items()}
        assert reply.mask is not None
        self.set_mask(reply.mask)
        extra = self.round_info.setdefault("extra", {})
        extra["prunefl_ip_client"] = pid
        extra["prunefl_ip_steps"] = float(reply.metrics.get("ip_steps", 0.0))

    def reconfigures(self, server_round: int) -> bool:
        """Whether `server_round` collects squared gradients and re-solves the mask."""
        every = self.options.adjust_every or self.cfg.readjust.readjust_every
        until = (self.options.adjust_until if self.options.adjust_until is not None
                 else self.cfg.readjust.readjust_until)
        return reconfigures(server_round, every, until)

    def client_instructions(self, server_round: int) -> dict[str, Any]:
        return {**super().client_instructions(server_round), COLLECT: self.reconfigures(server_round)}

    @functools.cached_property
    def _model_info(self) -> tuple[dict[str, int], list[str]]:
        """(output positions per weight of each layer, the parameters that are not masked)."""
        model = self.exp.new_model()
        data = self.exp.data
        return output_positions(model, (data.in_channels, *data.image_size)), rest_names(model, self.masked)

    def summed_sq_grad(self) -> tuple[dict[str, torch.Tensor], float] | None:
        """The round's squared gradients summed over the replies (per masked tensor, on the server
        device) and the summed numerator of the other parameters; None if no reply carried
        valid ones. A reply whose arrays have the wrong size, dtype or values is left out."""
        n_rest = len(self._model_info[1])
        total, rest, used = np.zeros(self.n_masked), 0.0, 0
        for r in self.replies:
            sq, other = r.extras.get(SQ_GRAD), r.extras.get(SQ_GRAD_REST)
            problem = _invalid(sq, self.n_masked) or _invalid(other, n_rest)
            if problem:
                log.warning("PruneFL: the squared gradients of client %d are left out: %s", r.pid, problem)
                continue
            draws = self.round_info["draws"][r.pid]
            total += draws * sq.astype(np.float64)
            rest += draws * float(other.astype(np.float64).sum())
            used += 1
        if not used:
            return None
        sizes = [int(np.prod(self.shapes[n])) for n in self.masked]
        parts = torch.from_numpy(total).split(sizes)
        return ({n: p.reshape(self.shapes[n]).to(self.device) for n, p in zip(self.masked, parts)},
                rest)

    def server_update(self, server_round: int, average: dict[str, torch.Tensor],
                      union: Mask | None) -> None:
        """Adopt the average; on reconfiguration rounds, re-solve the mask."""
        self.state = average
        done = False
        if self.reconfigures(server_round) and self.mask is not None:
            sums = self.summed_sq_grad()
            if sums is None:
                log.warning("PruneFL: round %d has no squared gradients; the mask is kept", server_round)
            else:
                sq, rest = sums
                opts = self.options
                coeff = layer_coefficients(self._model_info[0], self.mask, self.cfg.comm.codec,
                                           self.cfg.comm.value_dtype, opts)
                const = round_constant(coeff, self.mask, opts.time_constant)
                dtp = decay(opts.max_dec, opts.max_dec_half_life, server_round - 1)
                cap = int(density_cap(opts, self.cfg.mask.sparsity) * self.n_masked)
                weights = {n: self.state[n] for n in self.masked}
                self.set_mask(adaptive_mask(self.mask, weights, sq, coeff, const, dtp,
                                            extra_numerator=rest, max_active=cap))
                done = True
        self.round_info.setdefault("extra", {})["prunefl_reconfigured"] = int(done)


def _invalid(array: np.ndarray | None, size: int) -> str | None:
    """Why `array` is not `size` finite non-negative float32 values (None if it is)."""
    if array is None:
        return "missing"
    if array.dtype != np.float32 or array.shape != (size,):
        return f"expected float32 of shape ({size},), got {array.dtype} {array.shape}"
    if not np.isfinite(array).all() or (array < 0).any():
        return "values must be finite and >= 0"
    return None
