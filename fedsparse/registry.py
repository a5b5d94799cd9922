"""A tiny name -> object registry, one per pluggable kind (models, criteria, splits, ...)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Generic, TypeVar

from fedsparse.errors import ConfigError
from fedsparse.plugin_options import NoOptions, build_options, describe_options

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to implementations; `register` is a decorator, `get` fails with the allowed names.
    An implementation may declare its options dataclass (fedsparse/plugin_options.py)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self._options: dict[str, type] = {}

    def register(self, name: str, options: type | None = None) -> Callable[[T], T]:
        """Register the decorated object as `name`, with its options dataclass `options`."""
        def deco(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            self._items[name] = obj
            if options is not None:
                self._options[name] = options
            return obj

        return deco

    def options(self, name: str, values: Mapping[str, Any], key: str, config: Any = None) -> Any:
        """The options of `name` built from `values` (the dict at config key `key`; fields with a
        `config_key` read from `config`); ConfigError, one line, for a bad option."""
        self.get(name)
        cls = self._options.get(name, NoOptions)
        own = {f.name for f in dataclasses.fields(cls)}
        for option in values:
            others = [n for n, c in sorted(self._options.items())
                      if n != name and option in {f.name for f in dataclasses.fields(c)}]
            if option not in own and others:
                raise ConfigError(f"{key}.{option} is invalid: {option!r} is an option of "
                                  f"{self.kind} {', '.join(others)}, not of {self.kind} '{name}'"
                                  f" ({describe_options(cls)})")
        return build_options(cls, values, key, f"{self.kind} '{name}'", config)

    def options_class(self, name: str) -> type:
        """The options dataclass of `name` (`NoOptions` when it declares none)."""
        self.get(name)
        return self._options.get(name, NoOptions)

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise ConfigError(
                f"unknown {self.kind} '{name}'; allowed: {', '.join(self.names())}"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
