"""The centralized run's tensors: seeded training subset, scoring batches, normalised test set."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from fedsparse.centralized.config import CentralConfig
from fedsparse.data import ImageData, normalize
from fedsparse.errors import ConfigError
from fedsparse.sparse.criteria import Batches

# independent random streams derived from the seed
SUBSET_STREAM, SCORE_STREAM, METHOD_STREAM, ORDER_STREAM = range(4)


def generator(seed: int, stream: int) -> torch.Generator:
    """A CPU generator for one purpose (`stream`) of run `seed`."""
    return torch.Generator().manual_seed(int(np.random.SeedSequence([seed, stream]).generate_state(1)[0]))


@dataclass
class CentralData:
    """Normalised float32 train/test tensors and the batches criteria score on."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    score_batches: Batches


def central_data(cfg: CentralConfig, data: ImageData) -> CentralData:
    """Training set: all images, or with `train_subset` N the first N of a seeded shuffle.
    Scoring batches: the first `score_samples` of another seeded shuffle of that training set,
    in batches of `batch_size`."""
    n = len(data.train_y)
    if cfg.train_subset > n:
        raise ConfigError(f"train_subset={cfg.train_subset} is invalid: must be in [0, {n}] "
                          f"({cfg.dataset} has {n} training images)")
    if cfg.train_subset:
        idx = torch.randperm(n, generator=generator(cfg.seed, SUBSET_STREAM))[: cfg.train_subset]
        x_u8, y = data.train_x[idx], data.train_y[idx]
    else:
        x_u8, y = data.train_x, data.train_y
    x = normalize(x_u8, data.mean, data.std)
    pick = torch.randperm(len(y), generator=generator(cfg.seed, SCORE_STREAM))[: cfg.score_samples]
    batches = [(x[pick[i:i + cfg.batch_size]], y[pick[i:i + cfg.batch_size]])
               for i in range(0, len(pick), cfg.batch_size)]
    return CentralData(x, y, normalize(data.test_x, data.mean, data.std), data.test_y, batches)
