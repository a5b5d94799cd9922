"""3x3 stride-1 max-pool that finds its argmax with vectorized integer maxima.

PyTorch's CPU max-pool with indices vectorizes over channels in channels-last layout (blocks of
8 floats with AVX2) and runs a scalar tail for the rest: a CIFAR10Net conv1 map (32 x 6 x 28 x
28) takes 3.3 ms on one core, a conv2 map (32 x 16 x 22 x 22) 0.9 ms. For fewer than 8 channels,
`max_pool3` takes the maximum of three 1x3 row maxima instead and finds the argmax as the
maximum of an integer key (order-preserving bits of the value, then the reversed flat position:
equal values resolve to the first in row-major order, as PyTorch's kernel does), then hands that
index to PyTorch's own max-pool backward. Outputs and gradients are bitwise those of
`F.max_pool2d(x, 3, stride=1)`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

_VECTOR_CHANNELS = 8


def _max3(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Maximum of each run of three consecutive entries along `dim` (length shrinks by 2)."""
    n = x.shape[dim] - 2
    return torch.maximum(torch.maximum(x.narrow(dim, 0, n), x.narrow(dim, 1, n)),
                         x.narrow(dim, 2, n))


def window_argmax(x: torch.Tensor) -> torch.Tensor:
    """Flat index (h * W + w, int64) of the first maximum of each 3x3 window of float32 `x`,
    in row-major window order: the indices `F.max_pool2d(x, 3, 1, return_indices=True)` gives
    (NaN apart)."""
    height, width = x.shape[-2:]
    shift = max(height * width - 1, 1).bit_length()
    last = (1 << shift) - 1
    bits = (x + 0.0).view(torch.int32)  # -0.0 -> +0.0: equal floats get equal keys
    ordered = bits ^ ((bits >> 31) & 0x7FFFFFFF)  # integer order = float order
    reversed_pos = last - torch.arange(height * width).view(height, width)
    key = torch.add(reversed_pos, ordered, alpha=1 << shift)  # int64: value, then first position
    return last - (_max3(_max3(key, -1), -2) & last)


class _MaxPool3(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        return _max3(_max3(x, -1), -2)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return torch.ops.aten.max_pool2d_with_indices_backward(
            grad, x, [3, 3], [1, 1], [0, 0], [1, 1], False, window_argmax(x.detach()))


def max_pool3(x: torch.Tensor) -> torch.Tensor:
    """`F.max_pool2d(x, 3, stride=1)` of an N x C x H x W tensor, same values and gradients
    (second-order ones included); returns NCHW-contiguous values. CPU float32 maps with fewer
    than 8 channels take the integer-key path (forward + backward of a CIFAR10Net conv1 map:
    3.5 -> 1.7 ms), others PyTorch's channels-last kernel (the key path is slower there: a
    32 x 20 x 18 x 18 map 1.9 -> 2.4 ms)."""
    if (x.device.type == "cpu" and x.dtype == torch.float32 and x.ndim == 4
            and x.shape[1] < _VECTOR_CHANNELS and x.shape[-2] * x.shape[-1] <= 1 << 32):
        return _MaxPool3.apply(x.contiguous())
    return F.max_pool2d(x.contiguous(memory_format=torch.channels_last), 3, stride=1).contiguous()
