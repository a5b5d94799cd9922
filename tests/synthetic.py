"""A data-free experiment for tests of a method's client step and server logic: seeded random
28x28 images (labels 0-9 in turn) on an iid split, with the given config overrides."""

from __future__ import annotations

import torch

from fedsparse.config import load_config
from fedsparse.data import ImageData, make_split
from fedsparse.experiment import Experiment


def synthetic_experiment(overrides: list[str], *, images: int = 160, test_images: int = 40,
                         clients: int = 4) -> Experiment:
    """`feddst_mnist` with `overrides` on `images` synthetic training images over `clients`
    iid clients; the first `test_images` of them are also the test set."""
    cfg = load_config("feddst_mnist", [f"num_clients={clients}", "split=iid", *overrides])
    g = torch.Generator().manual_seed(0)
    y = torch.arange(images) % 10
    x = torch.randint(0, 256, (images, 1, 28, 28), generator=g, dtype=torch.uint8)
    data = ImageData("synthetic", [str(c) for c in range(10)], x, y, x[:test_images].clone(),
                     y[:test_images].clone())
    return Experiment(cfg, data, make_split("iid", y.numpy(), y[:test_images].numpy(), clients, 0))
