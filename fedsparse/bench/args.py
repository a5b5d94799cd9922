"""`load_dataclass`: `key=value` arguments over a settings dataclass's defaults, checked like
`fedsparse.config` (one `ConfigError` naming the field and what is allowed)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from fedsparse.config import _short
from fedsparse.errors import ConfigError

T = TypeVar("T")


def load_dataclass(cls: type[T], checks: Mapping[str, Callable[[Any, Any], str | None]],
                   argv: Sequence[str]) -> T:
    """Defaults of `cls`, then `key=value` overrides (OmegaConf dot-list), then `checks`."""
    for arg in argv:
        if "=" not in arg:
            raise ConfigError(f"argument {arg!r}: expected key=value")
    try:
        merged = OmegaConf.merge(OmegaConf.structured(cls), OmegaConf.from_dotlist(list(argv)))
        cfg = OmegaConf.to_object(merged)
    except OmegaConfBaseException as e:
        key = getattr(e, "full_key", None) or "?"
        allowed = ""
        if "not in" in _short(e):
            allowed = f"; allowed keys: {', '.join(f.name for f in dataclasses.fields(cls))}"
        raise ConfigError(f"{key} (command line): {_short(e)}{allowed}") from None
    for key, check in checks.items():
        value = getattr(cfg, key)
        problem = check(value, cfg)
        if problem is not None:
            raise ConfigError(f"{key}={value!r} is invalid: must be {problem}")
    return cfg  # type: ignore[return-value]
