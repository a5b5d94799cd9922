"""`max_pool3`: bitwise PyTorch's 3x3 stride-1 max-pool in values, indices and gradients."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from fedsparse.models.pooling import max_pool3, window_argmax


def _maps(kind: str, shape: tuple[int, ...], gen: torch.Generator) -> torch.Tensor:
    if kind == "normal":
        return torch.randn(shape, generator=gen)
    if kind == "ties":  # few distinct values: most windows hold their maximum more than once
        return torch.randint(-2, 3, shape, generator=gen).float()
    if kind == "negative":
        return -torch.randint(1, 3, shape, generator=gen).float()
    # signed zeros and infinities: -0.0 == +0.0 must tie like in PyTorch's kernel
    values = torch.tensor([-0.0, 0.0, float("inf"), -float("inf"), 1.5])
    return values[torch.randint(0, 5, shape, generator=gen)]


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 3), st.integers(1, 7), st.integers(3, 12), st.integers(3, 12),
       st.sampled_from(["normal", "ties", "negative", "special"]), st.booleans(),
       st.integers(0, 2**31 - 1))
def test_values_indices_and_gradients_match_pytorch(n: int, c: int, h: int, w: int, kind: str,
                                                    channels_last: bool, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    x = _maps(kind, (n, c, h, w), gen)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    ref_out, ref_idx = F.max_pool2d(x, 3, stride=1, return_indices=True)
    assert torch.equal(window_argmax(x.contiguous()), ref_idx)
    a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
    out, ref = max_pool3(a), F.max_pool2d(b, 3, stride=1)
    assert out.is_contiguous() and torch.equal(out, ref) and torch.equal(out, ref_out)
    g = torch.randn(ref.shape, generator=gen)
    out.backward(g)
    ref.backward(g)
    assert torch.equal(a.grad, b.grad)


def test_second_order_gradients_match_pytorch() -> None:
    """GraSP differentiates through the backward pass (Hessian-gradient product)."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(-3, 4, (2, 3, 10, 10), generator=gen).float()
    w0 = torch.randn(6, 3, 3, 3, generator=gen)
    results = []
    for pool in (max_pool3, lambda t: F.max_pool2d(t, 3, stride=1)):
        w = w0.clone().requires_grad_()
        (gw,) = torch.autograd.grad((pool(F.conv2d(x, w)) ** 2).sum(), [w], create_graph=True)
        (hg,) = torch.autograd.grad((gw * gw.detach()).sum(), [w])
        results.append((gw.detach(), hg))
    assert torch.equal(results[0][0], results[1][0])
    assert torch.equal(results[0][1], results[1][1])
    assert results[0][1].abs().sum() > 0


def test_wide_maps_use_pytorch_kernel_with_same_result() -> None:
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, 16, 9, 9, generator=gen)  # 16 channels: PyTorch's channels-last kernel
    out = max_pool3(x)
    assert out.is_contiguous() and torch.equal(out, F.max_pool2d(x, 3, stride=1))
