"""`CentralConfig`: the settings of one centralized (non-federated) sparse-training run.

Same style as `fedsparse.config`: a flat typed dataclass, loaded with OmegaConf from a YAML file
under configs/ plus `key=value` overrides, then every field checked; a bad value raises
`ConfigError` naming the field and what is allowed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from fedsparse.config import (Check, _choice, _config_path, _data_dir, _folder, _literal, _nonempty, _range,
                              allowed_keys, allows, check_fields, load_named, merge_error, read_yaml,
                              split_config_arg)

DEFAULT_CONFIG = "centralized_sparse"


@dataclass
class CentralConfig:
    """Every setting of a centralized run. Sparsity is the pruned fraction (density = 1 - sparsity)."""

    name: str = "centralized_sparse"
    seed: int = 0
    # data
    dataset: str = "mnist"
    data_dir: str | None = None
    download: bool = True
    train_subset: int = 0
    augment: bool = False
    # model
    model: str = "mnist_net"
    keep_first_dense: bool = False
    keep_last_dense: bool = False
    # training
    method: str = "rigl"
    epochs: int = 3
    batch_size: int = 64
    lr: float = 0.02
    lr_schedule: str = "cosine"
    momentum: float = 0.9
    weight_decay: float = 5e-4
    # sparsity
    sparsity: float = 0.9
    budget: str = "erk"
    criterion: str = "random"
    scope: str = "layer"
    score_samples: int = 256
    # mask updates (rigl, set, gradual)
    alpha: float = 0.3
    alpha_schedule: str = "cosine"
    readjust_steps: int = 100
    readjust_until: float = 0.75
    # runtime
    num_threads: int = 1
    output_dir: str = "runs"

    def to_yaml(self) -> str:
        return OmegaConf.to_yaml(OmegaConf.structured(self))

    @property
    def density(self) -> float:
        return 1.0 - self.sparsity


def _methods() -> list[str]:
    from fedsparse.centralized.registry import CENTRAL_METHODS

    return CENTRAL_METHODS.names()


@allows(lambda: f"one of: {', '.join(_methods())}")
def _method(v: Any, _: Any) -> str | None:
    allowed = _methods()
    return None if v in allowed else f"one of: {', '.join(allowed)}"


CHECKS: dict[str, Check] = {
    "name": _nonempty,
    "seed": _range(0, 2**31 - 1),
    "dataset": _choice("dataset"),
    "data_dir": _data_dir,
    "train_subset": _range(0),
    "model": _choice("model"),
    "method": _method,
    "epochs": _range(1, 100_000),
    "batch_size": _range(1, 1_000_000),
    "lr": _range(0, lo_open=True),
    "lr_schedule": _choice("schedule"),
    "momentum": _range(0, 1, hi_open=True),
    "weight_decay": _range(0),
    "sparsity": _range(0, 1, hi_open=True),
    "budget": _choice("budget"),
    "criterion": _choice("criterion"),
    "scope": _literal("layer", "global"),
    "score_samples": _range(1, 100_000),
    "alpha": _range(0, 1),
    "alpha_schedule": _choice("schedule"),
    "readjust_steps": _range(1, 10_000_000),
    "readjust_until": _range(0, 1, lo_open=True),
    "num_threads": _range(1, 256),
    "output_dir": _folder,
}


def validate(cfg: CentralConfig) -> CentralConfig:
    """Check every field of the centralized config."""
    check_fields(cfg, CHECKS)
    return cfg


def load_central_config(argv: Sequence[str] = (), default: str = DEFAULT_CONFIG) -> CentralConfig:
    """Load `default` (a name under configs/ or a YAML path), then apply `key=value` arguments;
    `config=NAME_OR_PATH` among them replaces the file."""
    return load_named(_central_config, argv, default, "epochs=5")


def _central_config(argv: Sequence[str], default: str) -> CentralConfig:
    config_arg, overrides = split_config_arg(argv, "epochs=5")
    path = _config_path(config_arg or default)
    file_cfg = read_yaml(path)
    merged = OmegaConf.structured(CentralConfig)
    for source, layer in ((str(path), file_cfg), ("command line", None)):
        try:
            merged = OmegaConf.merge(merged, OmegaConf.from_dotlist(overrides) if layer is None else layer)
        except OmegaConfBaseException as e:
            raise merge_error(e, source, allowed_keys(CentralConfig)) from None
    cfg = OmegaConf.to_object(merged)
    assert isinstance(cfg, CentralConfig)
    from fedsparse.preflight import check_central_fit  # the model's shapes, before any data loads

    check_central_fit(validate(cfg))
    return cfg
