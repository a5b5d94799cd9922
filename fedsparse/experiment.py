"""`Experiment`: what a config resolves to in one process (data, split, model factory), cached."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

import torch
from torch import nn

from fedsparse.config import Config, config_from_yaml
from fedsparse.data import ClientSplit, ImageData, load_dataset, make_split, normalize
from fedsparse.data.reference_stats import REFERENCE_STATS
from fedsparse.errors import DataError
from fedsparse.fl.strategies import STRATEGIES
from fedsparse.models import build_model, prunable_names


def split_kwargs(cfg: Config) -> dict[str, object]:
    """The split's own parameters, picked from the flat config."""
    by_split: dict[str, dict[str, object]] = {
        "pathological": {"classes_per_client": cfg.data.classes_per_client,
                         "samples_per_class": cfg.data.samples_per_class,
                         "reuse_shards": cfg.data.reuse_shards},
        "shards": {"shards_per_client": cfg.data.shards_per_client},
        "dirichlet": {"alpha": cfg.data.dirichlet_alpha},
        "iid": {},
    }
    params = dict(by_split.get(cfg.data.split, {}))
    if cfg.data.client_test != "auto":
        params["test_split"] = cfg.data.client_test
    return params


@dataclass
class Experiment:
    """The dataset, its federated split and the model recipe of one config."""

    cfg: Config
    data: ImageData
    split: ClientSplit

    def new_model(self) -> nn.Module:
        """The model with the run's seeded initial weights, or those of `init_checkpoint`."""
        model = build_model(self.cfg.model.model, self.data.num_classes, self.data.in_channels,
                            self.data.image_size[0], seed=self.cfg.seed)
        if self.cfg.model.init_checkpoint:
            from fedsparse.models.checkpoint import load_checkpoint

            load_checkpoint(model, self.cfg.model.init_checkpoint)
        return model

    @functools.cached_property
    def masked_names(self) -> list[str]:
        """Names of the prunable weights; empty for dense strategies."""
        if not STRATEGIES.get(self.cfg.train.strategy).sparse:
            return []
        return prunable_names(self.new_model(), self.cfg.mask.keep_first_dense, self.cfg.mask.keep_last_dense)

    @functools.cached_property
    def norm_stats(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Per-channel (mean, std) inputs are normalised with: the training images' own
        statistics, or the FedDST reference code's constants (`normalize=reference`)."""
        if self.cfg.data.normalize == "reference":
            return REFERENCE_STATS[self.cfg.data.dataset]
        return self.data.mean, self.data.std

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 images -> normalised float32, with `norm_stats`."""
        mean, std = self.norm_stats
        return normalize(x, mean, std)

    def client_train(self, pid: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Client `pid`'s training data, normalised float32 on CPU."""
        idx = torch.from_numpy(self.split.train[pid])
        return self.normalize(self.data.train_x[idx]), self.data.train_y[idx]


def build_experiment(cfg: Config) -> Experiment:
    """Load the data and make the split (validates split parameters before any training)."""
    try:
        data = load_dataset(cfg.data.dataset, cfg.data.data_dir, download=cfg.data.download)
    except DataError as e:  # name the setting that points at the data
        if "data_dir" in str(e):
            raise
        where = repr(cfg.data.data_dir) if cfg.data.data_dir else f"null ($FEDSPARSE_DATA={os.environ.get('FEDSPARSE_DATA')!r})"
        raise DataError(f"data_dir={where}: {e}") from None
    split = make_split(cfg.data.split, data.train_y.numpy(), data.test_y.numpy(), cfg.data.num_clients,
                       cfg.seed, **split_kwargs(cfg))
    return Experiment(cfg, data, split)


@functools.lru_cache(maxsize=2)
def experiment_from_yaml(yaml_text: str) -> Experiment:
    """Per-process cache: a client actor loads data and split once per config."""
    return build_experiment(config_from_yaml(yaml_text))
