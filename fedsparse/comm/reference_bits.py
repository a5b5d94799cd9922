"""The FedDST reference code's communication accounting (bits), as pure functions.

The reference charges 32 bits per active masked weight and per dense parameter, nothing for
positions except on readjustment rounds, and nothing for the first round's download. Results are
rounded to whole bits (the reference keeps the float products of its float32 density).
"""

from __future__ import annotations

import math

BITS_PER_VALUE = 32


def reference_upload_bits(
    n_masked: int,
    n_dense: int,
    density: float,
    readjusted: bool,
    sparsity: float | None = None,
    fp16: bool = False,
) -> int:
    """One client's upload: the values under a mask of `density`, the dense parameters, and the
    mask itself on readjustment rounds.

    The mask costs (1 - sparsity) bits per maskable weight; the reference reads the model's
    sparsity right after readjusting, i.e. 1 - `density` (the default). `fp16` reproduces the
    reference's miscount: 16 bits per active weight plus 32 per dense parameter plus 16 per
    maskable weight.
    """
    if fp16:
        bits = 16 * density * n_masked + BITS_PER_VALUE * n_dense + 16 * n_masked
    else:
        bits = BITS_PER_VALUE * (density * n_masked + n_dense)
    if readjusted:
        bits += (1 - (1 - density if sparsity is None else sparsity)) * n_masked
    return round(bits)


def reference_download_bits(
    n_masked: int, n_dense: int, global_density: float, mask_changed: bool, first_round: bool
) -> int:
    """One client's download: 1 bit per maskable weight if the global mask changed, plus (after the
    first round, whose model is deemed sent as a seed) the global model's active values and dense
    parameters."""
    bits = float(n_masked) if mask_changed else 0.0
    if not first_round:
        bits += BITS_PER_VALUE * (global_density * n_masked + n_dense)
    return round(bits)


def entropy_bits(n: int, density: float) -> float:
    """n * H(density): the information-theoretic floor, in bits, for a mask of n entries."""
    if not 0.0 <= density <= 1.0:
        raise ValueError(f"density must lie in [0, 1], got {density}")
    if density in (0.0, 1.0):
        return 0.0
    return n * -(density * math.log2(density) + (1 - density) * math.log2(1 - density))
