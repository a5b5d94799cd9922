"""SparsyFed: sparse adaptive federated training (Guastella, Sani, Iacob, Mora, Bellavista, Lane,
ICLR 2025, arXiv 2504.05153); the method section (section not verified) has three parts, all
here:

1. Powerpropagation re-parameterisation: the trainable ω is used as θ = sign(ω)|ω|^β (β = 1.25),
   so dL/dω = β|ω|^(β-1) dL/dθ and a zero weight never regrows on the client (`reparam`).
2. Activation pruning: for every Conv/Linear the input kept for the WEIGHT gradient is its top
   (1 - s) fraction by |x|, s = the zero fraction of the layer's θ; the forward output and the
   input gradient stay dense (`sparse_input_linear`, `sparse_input_conv2d`, `SparsyFedForward`).
3. After local training, one global magnitude prune of all Conv/Linear weights to the target
   density (`prune_to_density`); the server averages with zeros counted (`zero_average`).

Public code followed (AGuastella/fl_powerpropagation @038b9f6, project/):
task/utils/sparsyfed_modules.py l.97-131 (`sparsyfed_linear`), l.134-194 (`SparsyFedLinear`),
l.197-252 + l.39-94 (`sparsyfed_conv2d`, `convolution_backward`), l.255-364 (`SparsyFedConv2D`);
task/utils/drop.py l.156-180 (`matrix_drop_th`); fed/utils/utils.py l.455-460
(`get_tensor_sparsity`); task/cifar_resnet18/train_test.py l.388-405 (global L1 prune);
task/cifar_resnet18/models.py l.99-138 (`init_weights`, ω = sign(u)|u|^(1/β));
fed/server/strategy/fedavgNZ.py l.100-120 (weighted FedAvg, zeros count).

Deviations:
- Conv layers: the input threshold is recomputed on every batch (the code fixes it from the
  module's first training batch and reuses it for the rest of the round).
- The kept input count is ceil(keep * numel) after rounding keep * numel to 6 decimals (the code
  takes the plain ceil, where float error in 1 - s can keep one extra entry); at least 1.
- Linear inputs of any rank (the code's backward handles 2-D inputs only).
- `prune_to_density` uses fedsparse's `select_mask`: ties go to the lower index, and the global
  scope keeps at least one weight in every layer (the code's `prune.global_unstructured` may
  empty a layer). Like the code, it may keep zero-valued weights when fewer are non-zero.
- No adaptive "spectral" exponent (the code's alpha < 0, a post-paper extension).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import FunctionCtx, once_differentiable
from torch.nn.grad import conv2d_input, conv2d_weight
from torch.nn.modules.utils import _pair

from fedsparse.plugin_options import option
from fedsparse.sparse.mask import Mask
from fedsparse.sparse.select import select_mask

AVERAGES = ("zeros", "holders")
PRUNE_SCOPES = ("global", "layer")


@dataclass(frozen=True)
class SparsyFedOptions:
    """Options of SparsyFed (config `strategy_options`); the target sparsity is the top-level
    `sparsity`."""

    beta: float = option(1.25, "Powerpropagation exponent: layers use sign(w)|w|^beta (1 = no "
                         "re-parameterisation)", lo=1, hi=10)
    activation_pruning: bool = option(True, "compute each Conv/Linear weight gradient from the "
                                      "input's top (1 - weight sparsity) fraction by magnitude")
    average: str = option("zeros", "server average: 'zeros' = FedAvg with pruned entries counted "
                          "as 0 (the code), 'holders' = mean over the clients holding each entry",
                          choices=AVERAGES)
    prune_scope: str = option("global", "client prune after training: one magnitude ranking over "
                              "all layers ('global', the code) or the same density per layer",
                              choices=PRUNE_SCOPES)


def reparam(w: Tensor, beta: float) -> Tensor:
    """θ = sign(w)|w|^beta, differentiable (dθ/dw = beta|w|^(beta-1), 0 at w = 0 for beta > 1);
    `w` itself for beta = 1 (sparsyfed_modules.py l.178-190)."""
    if beta == 1.0:
        return w
    return torch.sign(w) * w.abs().pow(beta)


def inverse_reparam(theta: Tensor, beta: float) -> Tensor:
    """w = sign(θ)|θ|^(1/beta), the inverse of `reparam` (models.py `init_weights` l.99-138)."""
    return torch.sign(theta) * theta.abs().pow(1.0 / beta)


def reparam_state(state: dict[str, Tensor], names: Sequence[str], beta: float,
                  inverse: bool = False) -> dict[str, Tensor]:
    """`state` with the tensors `names` mapped through `reparam` (or `inverse_reparam`): θ for
    evaluating or exporting a model, ω from a model's own initial θ. Others are shared."""
    fn = inverse_reparam if inverse else reparam
    return {n: fn(t, beta) if n in names else t for n, t in state.items()}


def _kept_count(keep: float, numel: int) -> int:
    """ceil(keep * numel) (float noise rounded off), at least 1 and at most numel."""
    return min(numel, max(1, math.ceil(round(keep * numel, 6))))


def keep_top_fraction(x: Tensor, keep: float) -> Tensor:
    """`x` with only its top `keep` fraction by |x| (over the whole tensor) left, the rest 0: the
    k = ceil(keep * numel)-th largest |x| is the threshold and every |x| >= it is kept, ties
    included (drop.py `matrix_drop_th` l.156-180). keep >= 1 returns `x`."""
    if not 0.0 <= keep <= 1.0:
        raise ValueError(f"keep must be in [0, 1], got {keep}")
    if keep >= 1.0 or x.numel() == 0:
        return x
    mag = x.detach().abs().flatten()
    k = _kept_count(keep, mag.numel())
    threshold = torch.kthvalue(mag, mag.numel() - k + 1).values
    return torch.where(x.abs() >= threshold, x, torch.zeros((), dtype=x.dtype, device=x.device))


class _SparseInputLinear(torch.autograd.Function):
    """F.linear whose weight gradient reads the top-`keep` input (sparsyfed_modules.py
    l.97-131)."""

    @staticmethod
    def forward(ctx: FunctionCtx, x: Tensor, weight: Tensor, bias: Tensor | None,
                keep: float) -> Tensor:
        ctx.save_for_backward(keep_top_fraction(x, keep), weight)
        ctx.has_bias = bias is not None
        return F.linear(x, weight, bias)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, ...]:
        x_sparse, weight = ctx.saved_tensors
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = grad_out.matmul(weight)
        flat = grad_out.reshape(-1, grad_out.shape[-1])
        if ctx.needs_input_grad[1]:
            grad_w = flat.t().mm(x_sparse.reshape(-1, x_sparse.shape[-1]))
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = flat.sum(0)
        return grad_x, grad_w, grad_b, None


class _SparseInputConv2d(torch.autograd.Function):
    """F.conv2d whose weight gradient reads the top-`keep` input (sparsyfed_modules.py
    l.197-252, backward l.39-94)."""

    @staticmethod
    def forward(ctx: FunctionCtx, x: Tensor, weight: Tensor, bias: Tensor | None, keep: float,
                stride: tuple[int, int], padding: tuple[int, int], dilation: tuple[int, int],
                groups: int) -> Tensor:
        ctx.save_for_backward(keep_top_fraction(x, keep), weight)
        ctx.conf = (stride, padding, dilation, groups)
        ctx.x_shape = x.shape
        ctx.has_bias = bias is not None
        return F.conv2d(x, weight, bias, stride, padding, dilation, groups)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, ...]:
        x_sparse, weight = ctx.saved_tensors
        grad_out = grad_out.contiguous()
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = conv2d_input(ctx.x_shape, weight, grad_out, *ctx.conf)
        if ctx.needs_input_grad[1]:
            grad_w = conv2d_weight(x_sparse, weight.shape, grad_out, *ctx.conf)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = grad_out.sum((0, 2, 3))
        return grad_x, grad_w, grad_b, None, None, None, None, None


def sparse_input_linear(x: Tensor, weight: Tensor, bias: Tensor | None, keep: float) -> Tensor:
    """F.linear(x, weight, bias); in backward, dL/dx and dL/db are exact and dL/dW is computed
    from `keep_top_fraction(x, keep)` (keep = 1: exact dense gradients)."""
    return _SparseInputLinear.apply(x, weight, bias, keep)


def sparse_input_conv2d(x: Tensor, weight: Tensor, bias: Tensor | None, keep: float,
                        stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] = 0,
                        dilation: int | tuple[int, int] = 1, groups: int = 1) -> Tensor:
    """F.conv2d(x, weight, bias, stride, padding, dilation, groups) (integer padding); in
    backward, dL/dx and dL/db are exact and dL/dW is computed from `keep_top_fraction(x, keep)`
    with torch.nn.grad.conv2d_weight."""
    return _SparseInputConv2d.apply(x, weight, bias, keep, _pair(stride), _pair(padding),
                                    _pair(dilation), groups)


def weight_keep(theta: Tensor) -> float:
    """The non-zero fraction of a layer's θ: 1 - `get_tensor_sparsity` (utils.py l.455-460)."""
    return int(torch.count_nonzero(theta)) / max(theta.numel(), 1)


class SparsyFedForward:
    """Context manager: while active, the modules owning the masked weights `names` (nn.Linear /
    nn.Conv2d) compute with θ = reparam(w, beta) and, in training mode with gradients enabled
    and `activation_pruning`, take their weight gradient from the input's top `weight_keep(θ)`
    fraction (per batch). The raw parameters w stay the leaves: dL/dw = beta|w|^(beta-1) dL/dθ.
    Evaluation mode computes densely with θ (as the code). `mean_keep()` is the mean kept input
    fraction over the pruned calls so far (1.0 before any)."""

    def __init__(self, model: nn.Module, names: Sequence[str], options: SparsyFedOptions) -> None:
        self.options = options
        self.modules: list[nn.Module] = []
        for name in names:
            prefix, _, leaf = name.rpartition(".")
            module = model.get_submodule(prefix)
            if leaf != "weight" or not isinstance(module, (nn.Linear, nn.Conv2d)):
                raise ValueError(f"'{name}' is not the weight of an nn.Linear or nn.Conv2d")
            if isinstance(module, nn.Conv2d) and (isinstance(module.padding, str)
                                                  or module.padding_mode != "zeros"):
                raise ValueError(f"'{name}': only integer zero padding is supported")
            self.modules.append(module)
        self._saved: list[tuple[nn.Module, Any]] = []
        self._keep_sum = 0.0
        self._keep_calls = 0

    def mean_keep(self) -> float:
        return self._keep_sum / self._keep_calls if self._keep_calls else 1.0

    def _forward(self, module: nn.Module) -> Any:
        beta, prune = self.options.beta, self.options.activation_pruning

        def forward(x: Tensor) -> Tensor:
            theta = reparam(module.weight, beta)
            keep = 1.0
            if prune and module.training and torch.is_grad_enabled():
                keep = weight_keep(theta)
                self._keep_sum += keep
                self._keep_calls += 1
            if isinstance(module, nn.Linear):
                return sparse_input_linear(x, theta, module.bias, keep)
            return sparse_input_conv2d(x, theta, module.bias, keep, module.stride,
                                       module.padding, module.dilation, module.groups)

        return forward

    def __enter__(self) -> SparsyFedForward:
        if self._saved:
            raise RuntimeError("SparsyFedForward is already active")
        for module in self.modules:
            self._saved.append((module, module.__dict__.get("forward")))
            module.forward = self._forward(module)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        for module, previous in self._saved:
            if previous is None:
                del module.forward
            else:
                module.forward = previous
        self._saved = []


def prune_to_density(weights: dict[str, Tensor], names: Sequence[str], density: float,
                     scope: str = "global") -> Mask:
    """Keep-mask of the round(density * total) largest |w| over `names` (train_test.py
    l.388-405: prune.global_unstructured, L1). scope "global": one ranking over all layers, but
    every layer keeps at least its largest weight (`select_mask`); "layer": round(density * n)
    per layer (uniform budget). Ties to the lower index."""
    if scope not in PRUNE_SCOPES:
        raise ValueError(f"scope must be one of {', '.join(PRUNE_SCOPES)}, got '{scope}'")
    return select_mask({n: weights[n].detach().abs() for n in names}, density, scope=scope,
                       budget="uniform")


def zero_average(states: Sequence[dict[str, Tensor]], masks: Sequence[Mask],
                 weights: Sequence[float], masked: Sequence[str]
                 ) -> tuple[dict[str, Tensor], Mask]:
    """Weighted FedAvg of the client states with every client counted at every coordinate (its
    pruned entries as 0; fedavgNZ.py l.100-120), and the union of `masks` over `masked`. Same
    signature as `fedsparse.sparse.aggregate.sparse_average` (the 'holders' rule)."""
    if not states:
        raise ValueError("zero_average needs at least one client state")
    w = torch.as_tensor(weights, dtype=torch.float64)
    total = float(w.sum())
    out: dict[str, Tensor] = {}
    for name, ref in states[0].items():
        acc = torch.zeros_like(ref, dtype=torch.float64)
        for s, m, wi in zip(states, masks, w.tolist()):
            t = s[name].double()
            acc.add_(t.masked_fill(~m[name], 0.0) if name in masked else t, alpha=wi)
        out[name] = acc.div_(total).to(ref.dtype)
    union = {n: torch.stack([m[n] for m in masks]).any(0) for n in masked}
    return out, Mask(union)
