"""Typed options of pluggable pieces (criteria; later strategies, growth rules, codecs).

A plugin declares its options as a frozen dataclass whose fields are made with `option` (default,
one-line doc, range or choices); `build_options` makes an instance from a plain dict (a config
section such as `criterion_options`) and fails with one line naming the key and what is allowed:
an unknown option (listing the plugin's options), a wrong type, or a value out of range. A
dataclass may add a `check(self) -> str | None` method for conditions that span several fields.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from fedsparse.errors import ConfigError

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class NoOptions:
    """The options of a plugin that takes none."""


def option(default: Any, doc: str, *, lo: float | None = None, hi: float | None = None,
           lo_open: bool = False, hi_open: bool = False,
           choices: Sequence[str] | Callable[[], Sequence[str]] | None = None,
           config_key: str | None = None) -> Any:
    """A dataclass field for an option: `default`, what it does (`doc`), and what it accepts (a
    numeric range [lo, hi], open ends with `lo_open`/`hi_open`, or `choices`, e.g. a registry's
    `names`). `config_key`: the value is read from that top-level config key instead (kept for
    existing YAML files)."""
    meta = {"doc": doc, "lo": lo, "hi": hi, "lo_open": lo_open, "hi_open": hi_open,
            "choices": choices, "config_key": config_key}
    return dataclasses.field(default=default, metadata=meta)


def _type_name(tp: Any) -> str:
    """"float", "str or null", ..."""
    members = typing.get_args(tp) or (tp,)
    names = [getattr(t, "__name__", str(t)) for t in members if t is not type(None)]
    return " or ".join(names + ["null"] * (type(None) in members))


def _coerce(value: Any, tp: Any) -> tuple[bool, Any]:
    """(ok, value converted to `tp`) for the option types bool, int, float, str and `X | None`."""
    union = typing.get_origin(tp) in (typing.Union, types.UnionType)
    members = typing.get_args(tp) if union else (tp,)
    if value is None:
        return type(None) in members, None
    for t in members:
        if t is bool and isinstance(value, bool):
            return True, value
        if t is int and isinstance(value, int) and not isinstance(value, bool):
            return True, value
        if t is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return True, float(value)
        if t is str and isinstance(value, str):
            return True, value
    return False, value


def _interval(meta: Mapping[str, Any]) -> str:
    lo, hi = meta["lo"], meta["hi"]
    return (f"{'(' if meta['lo_open'] or lo is None else '['}{'-inf' if lo is None else lo}, "
            f"{'inf' if hi is None else hi}{')' if meta['hi_open'] or hi is None else ']'}")


def _choices(meta: Mapping[str, Any]) -> Sequence[str] | None:
    choices = meta.get("choices")
    return choices() if callable(choices) else choices


def _in_range(value: Any, meta: Mapping[str, Any]) -> bool:
    if _choices(meta) is not None:
        return value in _choices(meta)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            return False
        lo, hi = meta["lo"], meta["hi"]
        if lo is not None and (value <= lo if meta["lo_open"] else value < lo):
            return False
        if hi is not None and (value >= hi if meta["hi_open"] else value > hi):
            return False
    return True


def accepts(f: dataclasses.Field, tp: Any) -> str:
    """What option field `f` of type `tp` accepts, e.g. "a float in (0, inf)"."""
    meta = f.metadata
    if _choices(meta) is not None:
        return f"one of: {', '.join(_choices(meta))}"
    name = _type_name(tp)
    kind = f"{'an' if name[0] in 'aeiou' else 'a'} {name}"
    if meta.get("lo") is not None or meta.get("hi") is not None:
        return f"{kind} in {_interval(meta)}"
    return kind


def describe_options(cls: type) -> str:
    """One line listing `cls`'s options with their defaults, e.g. "temperature=1.0 (a float in
    (0, inf))"; "none" for a plugin without options."""
    items = [f"{name}={f.default!r} ({accepts(f, tp)})"
             for name, (f, tp) in _typed_fields(cls).items() if f.metadata.get("config_key") is None]
    return "; ".join(items) or "none"


def _typed_fields(cls: type) -> dict[str, tuple[dataclasses.Field, Any]]:
    """`cls`'s fields by name, each with its resolved type (annotations may be strings)."""
    hints = typing.get_type_hints(cls)
    return {f.name: (f, hints[f.name]) for f in dataclasses.fields(cls)}


def build_options(cls: type[T], values: Mapping[str, Any], key: str, owner: str,
                  config: Any = None) -> T:
    """An instance of the options dataclass `cls` from `values` (the dict at config key `key`);
    `owner` names the plugin in messages (e.g. "criterion 'grasp'"). Fields declared with a
    `config_key` are read from `config` (defaults when None). ConfigError, one line, for an
    unknown option, a wrong type, a value out of range, or a failed `check()`."""
    fields = _typed_fields(cls)
    own = [n for n, (f, _) in fields.items() if f.metadata.get("config_key") is None]
    kwargs: dict[str, Any] = {}
    for name, value in values.items():
        f, tp = fields.get(name, (None, None))
        if f is None or f.metadata.get("config_key") is not None:
            if f is not None:
                raise ConfigError(f"{key}.{name} is invalid: {owner} reads {name} from the key "
                                  f"{f.metadata['config_key']}; set {f.metadata['config_key']}= instead")
            allowed = f"its options: {', '.join(own)}" if own else "it takes no options"
            raise ConfigError(f"{key}.{name} is invalid: {owner} has no option {name!r}; {allowed}")
        ok, converted = _coerce(value, tp)
        if not ok or not _in_range(converted, f.metadata):
            raise ConfigError(f"{key}.{name}={value!r} is invalid: must be {accepts(f, tp)} "
                              f"({owner}: {f.metadata.get('doc', name)})")
        kwargs[name] = converted
    if config is not None:
        for name, (f, _) in fields.items():
            if f.metadata.get("config_key") is not None:
                key_name = f.metadata["config_key"]  # a flat setting name of a sectioned config
                kwargs[name] = (config.flat()[key_name] if hasattr(config, "flat")
                                else getattr(config, key_name))
    instance = cls(**kwargs)
    check = getattr(instance, "check", None)
    problem = check() if callable(check) else None
    if problem is not None:
        raise ConfigError(f"{key}={dict(values)!r} is invalid for {owner}: {problem}")
    return instance


def as_kwargs(options: Any) -> dict[str, Any]:
    """The options as keyword arguments of the plugin's function."""
    return {f.name: getattr(options, f.name) for f in dataclasses.fields(options)}
