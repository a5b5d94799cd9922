"""Fixed normalisation constants of the FedDST reference code (bibikar/feddst datasets.py), used
with `normalize=reference` instead of the statistics of the loaded training images."""

from __future__ import annotations

CIFAR_STATS = ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010))

REFERENCE_STATS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "cifar10": CIFAR_STATS,
    "cifar100": CIFAR_STATS,
    "mnist": ((0.1307,), (0.3081,)),
}
"""dataset -> (mean, std) per channel on the [0, 1] scale."""
