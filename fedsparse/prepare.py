"""`prepare`: everything about a run that can fail on bad input, checked before Ray starts (the
devices, data, split, model and the checkpoint to resume from), then its run folder. Used by the
simulation runner and by the ServerApp's `flwr run` entry."""

from __future__ import annotations

import torch

from fedsparse.config import Config
from fedsparse.errors import ConfigError, DataError
from fedsparse.experiment import Experiment, experiment_from_yaml
from fedsparse.fl.checkpoint import open_run_folder
from fedsparse.metrics.run_folder import RunFolder
from fedsparse.preflight import check_client_device, check_model_fit


def server_device(cfg: Config) -> torch.device:
    """cuda when available (or asked for), else cpu."""
    if cfg.runtime.server_device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("server_device='cuda' but no CUDA device is visible; use auto or cpu")
    if cfg.runtime.server_device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(cfg.runtime.server_device)


def prepare(cfg: Config) -> RunFolder:
    """Everything that can fail on bad input, before Ray starts: data, split, model."""
    server_device(cfg)
    check_client_device(cfg)
    exp = experiment_from_yaml(cfg.to_yaml())
    check_model_fit(cfg, exp.new_model())  # as load_config did on the registered shape
    exp.masked_names  # noqa: B018 - builds the prunable-name list, checking the model once
    if cfg.runtime.resume is not None:
        _check_checkpoint(cfg, exp)
    run = open_run_folder(cfg)
    if cfg.runtime.resume is None:
        exp.split.save_heatmap(exp.data.train_y.numpy(), run.path_for("split_heatmap.png"),
                               classes=exp.data.classes, run_name=run.path.name)
    return run


def _check_checkpoint(cfg: Config, exp: Experiment) -> None:
    """The checkpoint to resume from must load and fit the model (before Ray starts)."""
    from fedsparse.fl.checkpoint import load_checkpoint
    from fedsparse.fl.strategies import STRATEGIES

    try:
        _, state = load_checkpoint(cfg.runtime.resume)
    except DataError as e:
        raise DataError(f"resume={cfg.runtime.resume}: {e}") from None
    try:
        STRATEGIES.get(cfg.train.strategy).load()(exp, torch.device("cpu"), {}).load_state_dict(state)
    except (KeyError, ValueError, TypeError) as e:
        raise DataError(f"resume={cfg.runtime.resume}: the checkpoint does not fit this run ({e})") from None
