"""Initial weights from a file: `init_checkpoint` (e.g. a centrally pre-trained model)."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from fedsparse.errors import ConfigError


def save_checkpoint(model: nn.Module, path: str | Path) -> Path:
    """Write the model's state_dict (tensors only) with torch.save."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, path)
    return path


def load_checkpoint(model: nn.Module, path: str | Path) -> nn.Module:
    """Load a state_dict saved by `save_checkpoint` into `model` (strict: same architecture).

    Read with `torch.load(weights_only=True)`, so a file can hold tensors but no code.
    """
    where = f"init_checkpoint={str(path)!r}"
    try:
        state = torch.load(os.path.expanduser(path), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - unreadable, not a torch file, or unsafe content
        raise ConfigError(f"{where}: cannot be loaded as a weights-only state_dict ({e})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ConfigError(f"{where}: expected a dict of tensors (a model state_dict)")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        first = str(e).splitlines()[0]
        raise ConfigError(f"{where}: does not match model {type(model).__name__} ({first})") from None
    return model
