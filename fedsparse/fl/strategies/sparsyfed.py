"""`sparsyfed`: SparsyFed, sparse adaptive federated training (Guastella, Sani, Iacob, Mora,
Bellavista, Lane, ICLR 2025, arXiv 2504.05153; the method section, ≈ Sec. 3, section not verified:
the paper's text was not reachable). Rules and options: fedsparse.methods.sparsyfed; client step:
fedsparse.methods.sparsyfed_client.

Flow:
- Before round 1: the global state's masked tensors become ω = sign(θ)|θ|^(1/β) of the model's
  own initial θ, so the weights the layers use keep the model's initialisation (models.py
  `init_weights` l.99-138); the global mask is all ones, so round 1 sends the dense model (its
  download is counted like any other).
- Clients train ω through θ = sign(ω)|ω|^β with activation-pruned weight gradients, prune |ω| to
  density 1 - sparsity and upload that support (positions every round).
- Server: FedAvg with the pruned entries counted as zeros (`average=zeros`, fedavgNZ.py
  `aggregate` l.100-120) or over the holders of each entry (`average=holders`, this platform's
  rule); no server pruning: the global mask is the union of the round's client supports
  (task/cifar_resnet18/train_test.py `get_train_and_prune` l.313-425, client side; the server
  keeps whatever the average holds). Positions go down whenever the union changes.
- The server evaluates θ = reparam(ω) of the masked tensors (`eval_state`); checkpoints keep ω.
- Row: `union_density` (the global mask's density, the download's hidden cost), `regrown`
  (weights zero in the previous global state and non-zero now), `topk_regrown` (weights in the
  top 1 - sparsity of |ω| now that were not in the previous state's: the churn of the model pruned
  to the target density), `activation_keep` (mean over the round's replies of the clients' mean
  kept input fraction; its sum over clients is `client_activation_keep`).

`regrown` is 0 by construction, here as in the code: a zero ω gets no gradient (β > 1) and the
optimizer keeps the received mask, so every client support lies inside the received one and so
does their union. The global support can only shrink, from dense in round 1 towards 1 - sparsity
as the sampled clients' supports agree. The paper's own regrowth measure could not be checked.

The `criterion`, `budget` and `scope` keys (the initial mask and the layer budget of the other
sparse strategies) do not apply: round 1 is dense and the client prune is one global magnitude
ranking (or, with `prune_scope=layer`, the same density per layer). The target is `sparsity`.

Deviations, and why:
- Models and data: this platform's small CNNs without batch norm on FedDST's pathological split
  (paper: ResNet-18 with BN, ViT; LDA alpha in {1000, 1, 0.1}); ω is derived from the model's own
  init (the code: ω from a truncated normal), so no BN is needed at the start.
- Training: the platform's SGD (momentum 0.9, fixed lr, its weight decay and batch size, local
  epochs; paper runs: no momentum, lr 0.5 -> 0.01 exponentially decayed over the rounds, wd
  1e-3, batch 16, one epoch). A zero ω stays zero with momentum and weight decay as well.
- Conv activation threshold recomputed per batch; other rule-level deviations (rounding of the
  kept count, select_mask's ties and at least one weight per layer in the global prune): see
  fedsparse.methods.sparsyfed.
- The client's reply mask is its prune intersected with the received mask: positions outside it
  hold exact zeros (they could only be kept when fewer weights are non-zero than the budget) and
  are left out, so a client never widens the union with zeros.
- Activation pruning runs on dense tensors: `activation_keep` records how much a sparse kernel
  could save, the dense kernels here do not save it (and the Top-K per layer and batch is extra
  work).
- Replies are accepted up to round((1 - sparsity) x masked weights) + one weight per masked
  tensor (select_mask's per-layer minimum and per-layer rounding); a client cannot upload more.
"""

from __future__ import annotations

from collections.abc import Mapping
import torch
from flwr.serverapp import Grid

from fedsparse.experiment import Experiment
from fedsparse.fl.strategies.base import SparseFedAvg
from fedsparse.methods.sparsyfed import (SparsyFedOptions, prune_to_density, reparam_state,
                                         zero_average)
from fedsparse.sparse.mask import Mask


class SparsyFed(SparseFedAvg):
    """FedAvg of re-parameterised, client-pruned models on the union of their supports."""

    options: SparsyFedOptions

    def __init__(self, exp: Experiment, device: torch.device, node_of: Mapping[int, int]) -> None:
        super().__init__(exp, device, node_of)
        self.density_target = 1.0 - self.cfg.mask.sparsity

    def initialize(self, grid: Grid) -> None:
        """ω from the model's initial θ; the global mask all ones (round 1 is dense)."""
        self.state = reparam_state(self.state, self.masked, self.options.beta, inverse=True)
        self.set_mask(Mask({n: torch.ones(self.shapes[n], dtype=torch.bool, device=self.device)
                            for n in self.masked}))

    def average(self, states: list[dict[str, torch.Tensor]], masks: list[Mask], weights: list[float]
                ) -> tuple[dict[str, torch.Tensor], Mask]:
        """`zero_average` (zeros counted, the code) or, with `average=holders`, the platform's
        holder average."""
        if self.options.average == "zeros":
            return zero_average(states, masks, weights, self.masked)
        return super().average(states, masks, weights)

    def top_mask(self, state: Mapping[str, torch.Tensor]) -> Mask:
        """The client prune applied to `state`: its top 1 - sparsity of |ω|."""
        return prune_to_density({n: state[n] for n in self.masked}, self.masked,
                                self.density_target, self.options.prune_scope)

    def server_update(self, server_round: int, average: dict[str, torch.Tensor],
                      union: Mask | None) -> None:
        """Adopt the average on the union of the client supports (no server pruning)."""
        assert union is not None
        previous = self.state
        self.state = average
        self.set_mask(union)
        regrown = sum(int(((previous[n] == 0) & (self.state[n] != 0)).sum()) for n in self.masked)
        before, now = self.top_mask(previous), self.top_mask(self.state)
        keeps = [float(r.metrics.get("activation_keep", 1.0)) for r in self.replies]
        self.round_info["extra"] = {
            **self.round_info.get("extra", {}), "union_density": union.density(),
            "regrown": regrown,
            "topk_regrown": sum(int((now[n] & ~before[n]).sum()) for n in self.masked),
            "activation_keep": sum(keeps) / len(keeps) if keeps else 1.0}

    def reply_budget(self) -> int:
        """round((1 - sparsity) x masked weights) + one per masked tensor: the most an honest
        client prune keeps (select_mask's per-layer minimum and rounding)."""
        return round(self.density_target * self.n_masked) + len(self.masked)

    def eval_state(self) -> dict[str, torch.Tensor]:
        """θ = reparam(ω) of the masked tensors, the others as they are."""
        return reparam_state(self.state, self.masked, self.options.beta)
