"""Methods of a comparison: a name and the config overrides that make it (configs/methods.yaml)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from fedsparse.config import CONFIG_DIR, Config, load_config
from fedsparse.errors import ConfigError
from fedsparse.fl.strategies import STRATEGIES

DEFAULT_METHODS_FILE = CONFIG_DIR / "methods.yaml"


def load_methods(path: str | Path | None = None) -> dict[str, dict[str, Any]]:
    """name -> overrides, read from `path` (default configs/methods.yaml)."""
    path = Path(path) if path else DEFAULT_METHODS_FILE
    if not path.is_file():
        raise ConfigError(f"methods_file={str(path)!r}: file not found")
    try:
        data = OmegaConf.to_container(OmegaConf.load(path))
    except Exception as e:  # noqa: BLE001 - any YAML problem is a config error
        raise ConfigError(f"methods_file={str(path)!r}: cannot be read as YAML ({e})") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise ConfigError(f"methods_file={str(path)!r}: must map each method name to a mapping of "
                          "config overrides")
    return {str(k): dict(v) for k, v in data.items()}


def as_args(overrides: dict[str, Any]) -> list[str]:
    """`key=value` arguments (OmegaConf dot-list syntax) for `load_config`."""
    def text(v: Any) -> str:
        if v is None:
            return "null"
        if isinstance(v, bool):
            return str(v).lower()
        if isinstance(v, (list, tuple)):
            return "[" + ",".join(text(x) for x in v) + "]"
        return str(v)

    return [f"{k}={text(v)}" for k, v in overrides.items()]


def is_sparse(cfg: Config) -> bool:
    """Whether the method's strategy trains and sends a sparse model."""
    return STRATEGIES.get(cfg.train.strategy).sparse


def method_config(config: str, overrides: list[str], method: str,
                  methods: dict[str, dict[str, Any]]) -> Config:
    """The validated config of `method`: the base config, the user's overrides, then the method's."""
    if method not in methods:
        raise ConfigError(f"methods: unknown method {method!r}; allowed: {', '.join(methods)}")
    try:
        return load_config(config, [*overrides, *as_args(methods[method])])
    except ConfigError as e:
        raise ConfigError(f"method {method}: {e}") from None
