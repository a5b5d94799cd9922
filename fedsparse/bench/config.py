"""`BenchConfig`: the grid of the pruning bench, loaded like a run config.

A YAML file under configs/ (default `pruning_bench`), optionally one of its `presets` (a mapping
of preset name -> keys that replace the file's), then `key=value` overrides (OmegaConf dot-list:
`criteria=[random,snip]`, `fl.lr=0.05`). Every key is checked, and every cell's run config is
built and validated with `fedsparse.config.load_config` before the first cell runs, so a bad
value fails at once with one `ConfigError` naming it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from fedsparse.bench.pretrain import PretrainConfig
from fedsparse.config import (_choice, _config_path, _folder, _literal, _nonempty, _range, _short, allowed_keys,
                              allows, check_fields, describe, load_named, merge_error, read_yaml, split_config_arg)
from fedsparse.errors import ConfigError
from fedsparse.sparse.ablation import ABLATIONS

DEFAULT_CONFIG = "pruning_bench"

# Run-config keys the grid sets for every cell; `fl` may not set them.
GRID_KEYS = ("strategy", "criterion", "sparsity", "split", "dirichlet_alpha", "scoring",
             "mask_ablation", "seed", "rounds", "name", "output_dir", "progress")


@dataclass
class BenchConfig:
    """The grid: criteria x sparsities x splits x scorings x ablations x variants x seeds."""

    name: str = "pruning_bench"
    base_config: str = "cifar_noniid"   # the run config file every cell starts from
    fl: dict[str, Any] = field(default_factory=dict)   # run-config keys shared by every cell
    criteria: list[str] = field(default_factory=lambda: [
        "random", "magnitude", "snip", "grasp", "synflow", "lottery", "learned"])
    sparsities: list[float] = field(default_factory=lambda: [0.5, 0.8, 0.9, 0.95, 0.98])
    splits: list[str] = field(default_factory=lambda: [
        "iid", "dirichlet_1.0", "dirichlet_0.5", "dirichlet_0.1", "pathological"])
    scorings: list[str] = field(default_factory=lambda: ["server", "federated"])
    ablations: list[str] = field(default_factory=lambda: ["none"])
    variants: dict[str, Any] = field(default_factory=lambda: {"base": {}})
    seeds: list[int] = field(default_factory=lambda: [0])
    rounds: int = 10
    federated_data_free: bool = False   # also score random/magnitude/synflow "federated"
    train_scorer: bool = True           # criterion learned without fl.scorer_path: train one first
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)  # missing init_checkpoint files
    output_dir: str = "runs/pruning_bench"
    preset: str | None = None

    def to_yaml(self) -> str:
        return OmegaConf.to_yaml(OmegaConf.structured(self))


Check = Callable[[Any, BenchConfig], str | None]


def _each(check: Callable[[Any, Any], str | None], what: str) -> Check:
    """A check of a non-empty list without duplicates whose every item passes `check`."""
    @allows(lambda: f"a non-empty list of distinct {what}, each {describe(check)}")
    def run(values: Any, cfg: BenchConfig) -> str | None:
        if not values:
            return f"a non-empty list of {what}"
        if len(set(values)) != len(values):
            return f"a list of distinct {what}"
        for v in values:
            problem = check(v, cfg)
            if problem is not None:
                return f"a list of {what}; {v!r} is not {problem}"
        return None
    return run


def parse_split(spec: str) -> dict[str, Any]:
    """`iid`, `pathological`, `shards` or `dirichlet_<alpha>` -> run-config keys."""
    if isinstance(spec, str) and spec.startswith("dirichlet_"):
        try:
            alpha = float(spec.removeprefix("dirichlet_"))
        except ValueError:
            raise ConfigError(f"split {spec!r}: expected dirichlet_<alpha>, e.g. dirichlet_0.5") from None
        if not alpha > 0 or alpha != alpha or alpha == float("inf"):
            raise ConfigError(f"split {spec!r}: the Dirichlet alpha must be a finite number > 0")
        return {"split": "dirichlet", "dirichlet_alpha": alpha}
    return {"split": spec}


@allows(lambda: f"one of: {', '.join(s for s in _names_of('split') if s != 'dirichlet')}, "
                "dirichlet_<alpha>")
def _split(v: Any, _: Any) -> str | None:
    try:
        split = parse_split(v)["split"]
    except ConfigError as e:
        return str(e)
    if split == "dirichlet":
        return None
    allowed = [s for s in _names_of("split") if s != "dirichlet"]
    return None if split in allowed else f"one of: {', '.join(allowed)}, dirichlet_<alpha>"


def _names_of(kind: str) -> list[str]:
    from fedsparse import registries

    return registries.names(kind)


@allows("a non-empty mapping: variant name (no '/' or '-') -> run-config keys not set by the grid")
def _variants(v: Any, _: BenchConfig) -> str | None:
    if not v:
        return "a non-empty mapping of variant name -> run-config keys (e.g. {base: {}})"
    for name, keys in v.items():
        if _nonempty(name, None) is not None or "-" in name:
            raise ConfigError(f"variants.{name}: a variant name must be non-empty, without '/' or '-'")
        if keys is not None and not isinstance(keys, dict):
            raise ConfigError(f"variants.{name}={keys!r} is invalid: must be a mapping of run-config keys")
        for key in sorted(set(keys or {}) & set(GRID_KEYS)):
            raise ConfigError(f"variants.{name}.{key}: set by the grid, not by a variant")
    return None


@allows(f"a mapping of run-config keys other than {', '.join(GRID_KEYS)}")
def _fl(v: Any, _: BenchConfig) -> str | None:
    for key in sorted(set(v) & set(GRID_KEYS)):
        raise ConfigError(f"fl.{key}: set by the grid for every cell (use the grid lists: "
                          "criteria, sparsities, splits, scorings, ablations, seeds, rounds)")
    return None


CHECKS: dict[str, Check] = {
    "name": _nonempty,
    "base_config": allows("a run config under configs/ or a YAML path")(
        lambda v, _: None if _config_file(v) else "a run config under configs/ or a YAML path"),
    "fl": _fl,
    "criteria": _each(_choice("criterion"), "criteria"),
    "sparsities": _each(_range(0, 1, hi_open=True), "sparsities"),
    "splits": _each(_split, "splits"),
    "scorings": _each(_literal("server", "federated"), "scorings"),
    "ablations": _each(_literal(*ABLATIONS), "ablations"),
    "variants": _variants,
    "seeds": _each(_range(0, 2**31 - 1), "seeds"),
    "rounds": _range(1, 1_000_000),
    "output_dir": _folder,
    "pretrain": lambda v, _: _pretrain(v),
}

PRETRAIN_CHECKS: dict[str, Check] = {
    "epochs": _range(1, 10_000),
    "lr": _range(0, lo_open=True),
    "momentum": _range(0, 1, hi_open=True),
    "weight_decay": _range(0),
    "batch_size": _range(1, 1_000_000),
    "max_images": _range(0),
    "seed": _range(0, 2**31 - 1),
}


def _pretrain(p: PretrainConfig) -> str | None:
    for key, check in PRETRAIN_CHECKS.items():
        value = getattr(p, key)
        problem = check(value, None)
        if problem is not None:
            raise ConfigError(f"pretrain.{key}={value!r} is invalid: must be {problem}")
    return None


def _config_file(name: str) -> bool:
    try:
        _config_path(name)
    except ConfigError:
        return False
    return True


def validate(cfg: BenchConfig) -> BenchConfig:
    """Check every field; raise ConfigError naming the first bad one and what is allowed."""
    check_fields(cfg, CHECKS)
    return cfg


def _merge(merged: DictConfig, layer: Any, source: str) -> DictConfig:
    """Typed merge of one layer; `variants` (a mapping) is replaced, not merged key by key."""
    try:
        if isinstance(layer, DictConfig) and "variants" in layer:
            merged.variants = {}
        return OmegaConf.merge(merged, layer)
    except OmegaConfBaseException as e:
        raise merge_error(e, source, allowed_keys(BenchConfig)) from None


def load_bench_config(argv: Sequence[str] = (), default: str = DEFAULT_CONFIG) -> BenchConfig:
    """The file (`config=NAME_OR_PATH` replaces `default`), its preset (`preset=NAME` on the command
    line or in the file), then the other `key=value` arguments; validated."""
    return load_named(_bench_config, argv, default, "preset=small")


def _bench_config(argv: Sequence[str], default: str) -> BenchConfig:
    config_arg, rest = split_config_arg(argv, "preset=small")
    overrides: list[str] = []
    preset: str | None = None
    for arg in rest:
        key, value = arg.split("=", 1)
        if key == "preset":
            preset = value or None
        else:
            overrides.append(arg)
    path = _config_path(config_arg or default)
    file_cfg = read_yaml(path)
    if not isinstance(file_cfg, DictConfig):
        raise ConfigError(f"config file {path}: expected a mapping of keys")
    presets = file_cfg.pop("presets", None) or {}
    preset = preset if preset is not None else file_cfg.get("preset")
    merged = _merge(OmegaConf.structured(BenchConfig), file_cfg, str(path))
    if preset is not None:
        if preset not in presets:
            allowed = ", ".join(sorted(presets)) or "(none in this file)"
            raise ConfigError(f"preset={preset!r} is invalid: must be one of: {allowed}")
        merged = _merge(merged, presets[preset], f"{path}, preset {preset}")
        merged.preset = preset
    try:
        dotlist = OmegaConf.from_dotlist(overrides)
    except Exception as e:  # noqa: BLE001 - OmegaConf or YAML syntax errors
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ConfigError(f"command line: cannot parse {' '.join(overrides)!r} ({first})") from None
    merged = _merge(merged, dotlist, "command line")
    try:
        cfg = OmegaConf.to_object(merged)
    except OmegaConfBaseException as e:
        raise ConfigError(f"{getattr(e, 'full_key', None) or '?'}: {_short(e)}") from None
    assert isinstance(cfg, BenchConfig)
    cfg.variants = {k: dict(v or {}) for k, v in cfg.variants.items()} if cfg.variants else {}
    return validate(cfg)
