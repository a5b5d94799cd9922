"""Which parameters a sparse method may mask: the weights of Conv and Linear layers."""

from __future__ import annotations

from torch import nn

from fedsparse.errors import ConfigError

_PRUNABLE = (nn.modules.conv._ConvNd, nn.Linear)


def prunable_names(model: nn.Module, keep_first_dense: bool = False,
                   keep_last_dense: bool = False) -> list[str]:
    """Parameter names of every Conv/Linear weight in module order (biases and norms never).

    `keep_first_dense` / `keep_last_dense` drop the first / last of them (left dense).
    """
    names = [f"{prefix}.weight" if prefix else "weight"
             for prefix, module in model.named_modules() if isinstance(module, _PRUNABLE)]
    start = 1 if keep_first_dense else 0
    stop = len(names) - 1 if keep_last_dense else len(names)
    return names[start:stop]


def first_layer_name(model: nn.Module) -> str:
    """Parameter name of the first Conv/Linear weight (the layer that reads the input features)."""
    names = prunable_names(model)
    if not names:
        raise ConfigError(f"{type(model).__name__} has no Conv or Linear layer")
    return names[0]
