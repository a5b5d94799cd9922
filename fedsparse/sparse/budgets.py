"""Layer-wise budgets: how many weights each layer keeps at a global density.

A budget maps `(shapes, density)` to integer kept counts per layer. Every budget realises exactly
`round(density * total)` kept weights overall, keeps each layer within one weight of its
real-valued target, and keeps at least one weight in every non-empty layer.
Linear weights are 2-D `(out, in)`, conv weights 4-D `(out, in, kh, kw)`; tensors of any other
rank get the uniform share (density `density`) in every budget.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from fedsparse.errors import ConfigError
from fedsparse.registry import Registry

Budget = Callable[[dict[str, torch.Size], float], dict[str, int]]

BUDGETS: Registry[Budget] = Registry("budget")


def layer_budget(name: str, shapes: dict[str, torch.Size], density: float) -> dict[str, int]:
    """Kept weights per layer under budget `name` at global kept fraction `density` in (0, 1]."""
    if not 0.0 < density <= 1.0:
        raise ConfigError(f"density must be in (0, 1], got {density}")
    return BUDGETS.get(name)(shapes, density)


def _fanin_fanout(shape: torch.Size, kernel: bool) -> float | None:
    """(n_in + n_out [+ kh + kw]) / (n_in * n_out [* kh * kw]); None unless 2-D or 4-D."""
    if len(shape) == 2:
        n_out, n_in = shape
        return (n_in + n_out) / (n_in * n_out)
    if len(shape) == 4:
        n_out, n_in, kh, kw = shape
        if kernel:
            return (n_in + n_out + kh + kw) / (n_in * n_out * kh * kw)
        return (n_in + n_out) / (n_in * n_out)
    return None


def _solve_clipped(weights: np.ndarray, lo: np.ndarray, hi: np.ndarray, total: float) -> np.ndarray:
    """x = clip(c * weights, lo, hi) with the constant c >= 0 chosen so that sum(x) == total.

    Equivalent to RigL's iteration (cap the layers that overflow, re-solve the rest), done exactly:
    sum(x) is piecewise linear in c, so c is found between two consecutive breakpoints.
    """
    movable = weights > 0
    top = np.where(movable, hi, lo).sum()
    if not lo.sum() - 1e-9 <= total <= top + 1e-9:
        raise ConfigError(
            f"cannot place {total:.1f} weights in {len(weights)} layers "
            f"(feasible range {lo.sum():.0f}..{top:.0f}); density too extreme for this budget"
        )
    breaks = np.unique(np.concatenate([lo[movable], hi[movable]]) / np.tile(weights[movable], 2))
    prev, f_prev = 0.0, float(lo.sum())
    for c in breaks:
        f_c = float(np.clip(c * weights, lo, hi).sum())
        if f_c >= total:
            if f_c > f_prev:
                c = prev + (c - prev) * (total - f_prev) / (f_c - f_prev)
            return np.clip(c * weights, lo, hi)
        prev, f_prev = c, f_c
    return np.where(movable, hi, lo)


def _round_to_total(targets: np.ndarray, sizes: np.ndarray, total: int) -> np.ndarray:
    """Largest-remainder rounding: integers summing to `total`, each within one of its target."""
    t = np.clip(targets, np.minimum(1, sizes), sizes)
    kept = np.floor(t).astype(np.int64)
    order = np.argsort(-(t - kept), kind="stable")
    need = total - int(kept.sum())
    if need > 0:
        grow = [i for i in order if kept[i] < sizes[i]][:need]
        kept[grow] += 1
    elif need < 0:
        shrink = [i for i in order[::-1] if kept[i] > 1][:-need]
        kept[shrink] -= 1
    if int(kept.sum()) != total:
        raise ConfigError(f"cannot round budget to {total} kept weights in {sizes.tolist()}")
    return kept


def _allocate(
    shapes: dict[str, torch.Size],
    density: float,
    factor: Callable[[torch.Size], float | None],
    scale_sparsity: bool = False,
) -> dict[str, int]:
    """Real per-layer targets, then exact rounding.

    Layers whose `factor` is None keep the uniform share `density` (at least one weight). The others
    get density c * factor (or, with `scale_sparsity`, sparsity c * factor), clipped so that every
    layer keeps between 1 and all of its weights, with c solved so the total is density * total.
    """
    names = [n for n in shapes if math.prod(shapes[n]) > 0]
    sizes = np.array([math.prod(shapes[n]) for n in names], dtype=np.float64)
    raw = [factor(shapes[n]) for n in names]
    if all(f is None for f in raw):
        raw, scale_sparsity = [1.0] * len(names), False
    free = np.array([f is not None for f in raw], dtype=bool)
    fac = np.array([0.0 if f is None else max(f, 0.0) for f in raw])
    fixed_kept = np.clip(density * sizes, 1.0, sizes)
    share = density * sizes.sum()
    if scale_sparsity:
        fixed_pruned = sizes - fixed_kept
        pruned = _solve_clipped(
            np.where(free, fac * sizes, 0.0),
            np.where(free, 0.0, fixed_pruned),
            np.where(free, sizes - 1, fixed_pruned),
            sizes.sum() - share,
        )
        real = sizes - pruned
    else:
        real = _solve_clipped(
            np.where(free, fac * sizes, 0.0),
            np.where(free, 1.0, fixed_kept),
            np.where(free, sizes, fixed_kept),
            share,
        )
    kept = _round_to_total(real, sizes.astype(np.int64), round(density * int(sizes.sum())))
    out = {n: 0 for n in shapes}
    out.update({n: int(k) for n, k in zip(names, kept)})
    return out


def _erk_factor(shape: torch.Size) -> float | None:
    return _fanin_fanout(shape, kernel=True)


@BUDGETS.register("uniform")
def uniform(shapes: dict[str, torch.Size], density: float) -> dict[str, int]:
    """Every layer keeps the same fraction `density`."""
    return _allocate(shapes, density, lambda _: 1.0)


@BUDGETS.register("er")
def erdos_renyi(shapes: dict[str, torch.Size], density: float) -> dict[str, int]:
    """Erdos-Renyi: density_l proportional to (n_in + n_out) / (n_in * n_out), capped at 1."""
    return _allocate(shapes, density, lambda s: _fanin_fanout(s, kernel=False))


@BUDGETS.register("erk")
def erdos_renyi_kernel(shapes: dict[str, torch.Size], density: float) -> dict[str, int]:
    """RigL's ERK: density_l proportional to (n_in + n_out + kh + kw) / (n_in * n_out * kh * kw);
    layers that would exceed density 1 are dense and the constant is re-solved for the rest."""
    return _allocate(shapes, density, _erk_factor)


def _feddst_raw_sparsity(shape: torch.Size) -> float | None:
    f = _erk_factor(shape)
    return None if f is None else 1.0 - f


@BUDGETS.register("feddst_erk")
def feddst_erk(shapes: dict[str, torch.Size], density: float) -> dict[str, int]:
    """The FedDST reference code's "ERK": raw sparsity s_l = 1 - ERK factor, then every s_l is
    multiplied by one constant so the global sparsity is 1 - density (nearly uniform in practice).
    Sparsities are clipped to [0, 1 - 1/n_l], the constant re-solved when clipping binds."""
    return _allocate(shapes, density, _feddst_raw_sparsity, scale_sparsity=True)
