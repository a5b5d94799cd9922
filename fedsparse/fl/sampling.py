"""Seeded client sampling over partition ids (Flower's own node sampling is not seeded)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def sample_clients(seed: int, server_round: int, population: Sequence[int], k: int,
                   replace: bool = False) -> list[int]:
    """`k` partition ids for `server_round`, sorted; a pure function of its arguments. Distinct,
    or with `replace` drawn with replacement (as the FedDST reference code does: an id may appear
    more than once).

    Seeding per round (not from a running generator) makes a resumed run sample exactly as an
    uninterrupted one.
    """
    if k > len(population) and not replace:
        raise ValueError(f"cannot sample {k} clients from {len(population)}")
    rng = np.random.default_rng([seed, server_round])
    chosen = rng.choice(len(population), size=k, replace=replace)
    return sorted(int(population[i]) for i in chosen)
