"""Checks of a run config that need the model's layer shapes, made as the config is loaded.

The model is built on PyTorch's meta device (shapes only, no memory, no data) from the dataset's
registered shape, so a setting that the model or the initial mask cannot meet fails in the
first seconds, before any data is loaded or Ray starts, with one `ConfigError` naming it:
the model must take the dataset's images, some layer must be left to mask, every masked layer
keeps at least one weight under the layer budget at `sparsity`, and the `learned` criterion's
scorer must load. `prepare.prepare` repeats them on the real model, and checks that cuda clients
have a GPU (`check_client_device`).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import nn

from fedsparse.errors import ConfigError

if TYPE_CHECKING:
    from fedsparse.centralized.config import CentralConfig
    from fedsparse.config import Config


def model_on_meta(model: str, dataset: str) -> nn.Module:
    """Model `model` for `dataset`'s registered image shape and classes, on the meta device."""
    from fedsparse.data import DATASETS
    from fedsparse.models import build_model

    source = DATASETS.get(dataset)
    channels, height, _ = source.image_shape
    try:
        with torch.device("meta"):
            return build_model(model, source.num_classes, channels, height)
    except ConfigError as e:
        raise ConfigError(f"model={model!r} is invalid for dataset={dataset!r}: {e}") from None


def check_layer_budget(model: nn.Module, names: list[str], sparsity: float, budget: str,
                       model_name: str) -> None:
    """ConfigError naming `sparsity` (and its largest feasible value) when `budget` cannot keep
    a fraction 1 - sparsity of the weights `names` of `model` with at least one in each layer."""
    from fedsparse.sparse.budgets import layer_budget

    params = dict(model.named_parameters())
    shapes = {n: params[n].shape for n in names}
    try:
        layer_budget(budget, shapes, 1.0 - sparsity)
    except ConfigError:
        total = sum(math.prod(s) for s in shapes.values())
        limit = math.floor((1.0 - len(shapes) / total) * 1e6) / 1e6
        raise ConfigError(
            f"sparsity={sparsity!r} is invalid: must be at most {limit} for model={model_name!r} "
            f"with budget={budget!r} (each of its {len(shapes)} masked layers keeps at least one "
            f"of their {total} weights)") from None


def check_model_fit(cfg: Config, model: nn.Module | None = None) -> None:
    """Raise ConfigError, naming the setting, when `cfg`'s initial mask cannot be made on `model`
    (default: `model_on_meta`). Dense strategies make no mask and pass."""
    from fedsparse.fl.strategies import STRATEGIES
    from fedsparse.models.prunable import prunable_names

    model = model_on_meta(cfg.model.model, cfg.data.dataset) if model is None else model
    if not STRATEGIES.get(cfg.train.strategy).sparse:
        return
    names = prunable_names(model, cfg.mask.keep_first_dense, cfg.mask.keep_last_dense)
    if not names:
        raise ConfigError(f"keep_last_dense={cfg.mask.keep_last_dense!r} is invalid with "
                          f"keep_first_dense={cfg.mask.keep_first_dense!r}: model={cfg.model.model!r} has no "
                          "other Conv/Linear layer to mask")
    check_layer_budget(model, names, cfg.mask.sparsity, cfg.mask.budget, cfg.model.model)
    if cfg.mask.criterion == "learned" and cfg.mask.scorer_path is not None:
        from fedsparse.sparse.criteria.learned import load_scorer

        load_scorer(cfg.mask.scorer_path)  # ConfigError naming scorer_path if it is not a scorer


def check_client_device(cfg: Config) -> None:
    """ConfigError naming `client_device` when cuda clients are asked for on a private Ray
    instance (no `ray_address`) and torch sees no CUDA device here. A cluster's GPUs are checked
    once the run has joined it (`runner.start_ray`)."""
    if cfg.runtime.client_device == "cuda" and cfg.runtime.ray_address is None and not torch.cuda.is_available():
        raise ConfigError("client_device='cuda' is invalid: no CUDA device is visible on this "
                          "machine (torch.cuda.is_available() is false); use client_device=cpu, "
                          "or ray_address of a cluster with GPU nodes")


def check_central_fit(cfg: CentralConfig) -> None:
    """`check_model_fit` for a centralized run: the model must take the dataset's images and,
    unless the method is dense or ranks globally (fixed, scope=global), the layer budget must fit."""
    from fedsparse.models.prunable import prunable_names

    model = model_on_meta(cfg.model, cfg.dataset)
    if cfg.method == "dense" or (cfg.method == "fixed" and cfg.scope == "global"):
        return
    names = prunable_names(model, cfg.keep_first_dense, cfg.keep_last_dense)
    if names:
        check_layer_budget(model, names, cfg.sparsity, cfg.budget, cfg.model)
