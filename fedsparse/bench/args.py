"""`load_dataclass`: `key=value` arguments over a settings dataclass's defaults, checked like
`fedsparse.config` (one `ConfigError` naming the field and what is allowed)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from fedsparse.config import allowed_keys, check_fields, merge_error
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
        raise merge_error(e, "command line", allowed_keys(cls)) from None
    check_fields(cfg, checks)
    return cfg  # type: ignore[return-value]
