"""The run configuration: one frozen dataclass of sections, YAML files + `key=value` overrides, validation.

Loading goes through OmegaConf (typed merge of YAML and dot-list overrides); `validate` then checks
every field's range and every registry name, so bad input fails before any work starts with one
message naming the field and what is allowed.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from fedsparse.errors import ConfigError
from fedsparse.sections import (SECTIONS, CommConfig, DataConfig, MaskConfig, ModelConfig,
                                ReadjustConfig, RuntimeConfig, TrainConfig, flat_paths, get_path)

T = TypeVar("T")

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"


@dataclass(frozen=True)
class Config:
    """Every setting of a run, in sections (fedsparse/sections.py). Defaults are the FedDST paper's
    CIFAR-10 setting. Frozen and hashable; `with_` gives a changed copy by flat names."""

    name: str = "cifar_noniid"
    """run folder prefix: <output_dir>/<name>-<date>-<time>-s<seed>/"""
    seed: int = 0
    """seeds split, model init, sampling, client RNGs, server scoring"""
    faithful: bool = False
    """switch on every behaviour of the FedDST reference code (FAITHFUL_SETTINGS, docs/config.md)"""
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    mask: MaskConfig = field(default_factory=MaskConfig)
    readjust: ReadjustConfig = field(default_factory=ReadjustConfig)
    comm: CommConfig = field(default_factory=CommConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)

    def flat(self) -> dict[str, Any]:
        """Every setting by its flat name, in `FLAT_ORDER`."""
        return {name: get_path(self, FLAT[name]) for name in FLAT_ORDER}

    def with_(self, **changes: Any) -> Config:
        """A copy with the settings named by flat name (`cfg.with_(lr=0.1)`) changed."""
        cfg = self
        for name, value in changes.items():
            if name not in FLAT:
                raise TypeError(f"Config has no setting {name!r}")
            cfg = _replace_path(cfg, FLAT[name], value)
        return cfg

    def to_yaml(self) -> str:
        """The sectioned YAML of a run folder's config.yaml, headed by a comment with `hash()`."""
        return f"# config hash: {self.hash()}\n" + OmegaConf.to_yaml(OmegaConf.structured(self))

    def wire_yaml(self) -> str:
        """The keys that differ from their defaults, as flat YAML in `FLAT_ORDER`
        (`config_from_yaml` restores the rest): the config a node receives in its setup, so that a
        key added at its default, or a moved one, changes no run's bytes. Keys only the driver
        reads (`DRIVER_ONLY`) are left out."""
        default = Config().flat()
        changed = {k: v for k, v in self.flat().items() if k not in DRIVER_ONLY and v != default[k]}
        return OmegaConf.to_yaml(OmegaConf.create(changed))

    def __hash__(self) -> int:
        return hash(self.hash())

    def hash(self) -> str:
        """The run's identity: sha256 of the canonical JSON (sorted flat names) of every setting
        but `HASH_EXCLUDED`, with the criterion's options resolved (defaults included, so that a
        changed default changes the identity). Runs, the bench and the comparison match results
        by it."""
        fields = {k: v for k, v in self.flat().items() if k not in HASH_EXCLUDED}
        fields["criterion_options"] = _resolved_criterion_options(self)
        fields.pop("strategy_options")  # only strategies with options add it: older hashes hold
        if options := _resolved_strategy_options(self):
            fields["strategy_options"] = options
        text = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(text.encode()).hexdigest()


FLAT: dict[str, tuple[str, ...]] = flat_paths(Config)
"""Flat setting name -> attribute path (`lr` -> ("train", "lr")), derived from the dataclasses."""

_LEGACY_ORDER = (
    "name", "seed", "dataset", "data_dir", "download", "split", "num_clients", "classes_per_client",
    "samples_per_class", "reuse_shards", "shards_per_client", "dirichlet_alpha", "client_test",
    "augment", "model", "keep_first_dense", "keep_last_dense", "init_checkpoint", "strategy",
    "rounds", "clients_per_round", "local_epochs", "batch_size", "lr", "momentum", "weight_decay",
    "proximal_mu", "server_lr", "server_momentum", "sparsity", "budget", "criterion", "scoring",
    "score_samples", "mask_ablation", "input_keep", "scorer_path", "alpha", "alpha_schedule",
    "readjust_every", "readjust_until", "regrow_train_epochs", "readjust_gradient", "faithful",
    "normalize", "batch_order", "regrow_from", "double_softmax", "readjust_counter",
    "sample_with_replacement", "aggregation_weight", "codec", "value_dtype", "eval_every",
    "max_upload_gb", "output_dir", "num_actors", "client_device", "client_gpus", "server_device",
    "progress", "log_level", "logger", "ray_address", "checkpoint_every", "resume",
    "client_failure_rate", "client_dropout_rate")
FLAT_ORDER: tuple[str, ...] = (*_LEGACY_ORDER, *(n for n in FLAT if n not in _LEGACY_ORDER))
"""The order of flat settings in `Config.flat()` and on the wire (`wire_yaml`): the flat Config's
field order before sections (frozen, so that nodes' setup text stays byte-identical), then any
setting added since, in section order."""

HASH_EXCLUDED = ("name", "data_dir", "download", "output_dir", "num_actors", "client_gpus",
                 "server_device", "progress", "log_level", "logger", "ray_address",
                 "checkpoint_every", "resume", "flower_patches")
"""Settings left out of `Config.hash()`: they label the run, say where data and outputs are, or
how it is executed (actors, GPU shares, logging, checkpointing, resuming), not what it computes.
(server_device: aggregation/evaluation device, as the bench always treated it.)"""

DRIVER_ONLY = ("flower_patches",)
"""Keys that only the process running the simulation reads; nodes never receive them."""

RENAMED: dict[str, str] = {}
"""Old flat key -> its new key: loading a file or argument with the old key fails naming both."""


def _resolved_criterion_options(cfg: Config) -> dict[str, Any]:
    """The selected criterion's options with their defaults (`criterion_options` as given when the
    criterion is unknown: validation reports that)."""
    from fedsparse.sparse.criteria import CRITERIA

    if cfg.mask.criterion not in CRITERIA:
        return dict(cfg.mask.criterion_options)
    options = CRITERIA.options(cfg.mask.criterion, dict(cfg.mask.criterion_options),
                               "criterion_options", cfg)
    return dataclasses.asdict(options)


def _resolved_strategy_options(cfg: Config) -> dict[str, Any]:
    """The selected strategy's options with their defaults ({} for a strategy without options;
    `strategy_options` as given when the strategy is unknown: validation reports that)."""
    from fedsparse.fl.strategies.registry import STRATEGIES, strategy_options

    if cfg.train.strategy not in STRATEGIES:
        return dict(cfg.train.strategy_options)
    return dataclasses.asdict(strategy_options(cfg))


def _replace_path(obj: Any, path: tuple[str, ...], value: Any) -> Any:
    head, *rest = path
    return dataclasses.replace(obj, **{head: _replace_path(getattr(obj, head), tuple(rest), value)
                                       if rest else value})


def flat_name(key: str) -> str:
    """The flat name of a key given flat (`lr`) or dotted (`train.lr`); other keys unchanged."""
    return key if key in FLAT else _BY_PATH.get(key, key)


_BY_PATH = {".".join(path): name for name, path in FLAT.items()}


def sectioned(layer: Any, source: str) -> Any:
    """A config layer (YAML mapping or dot-list, flat or sectioned keys) with its flat keys moved
    into their sections (`model` is both: a mapping is the section, a value the setting); unknown
    keys stay, for the typed merge to name. A key in `RENAMED` is a
    ConfigError naming the old and the new key."""
    if not isinstance(layer, (DictConfig, dict)):
        return layer
    items = OmegaConf.to_container(layer) if isinstance(layer, DictConfig) else dict(layer)
    out: dict[str, Any] = {}
    for key, value in items.items():
        if key in RENAMED:
            raise ConfigError(f"{key} ({source}) was renamed to {RENAMED[key]}: use {RENAMED[key]}=...")
        path = (key,) if key in SECTIONS and isinstance(value, dict) else FLAT.get(key, (key,))
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
        if isinstance(value, dict) and isinstance(node.get(path[-1]), dict):
            node[path[-1]].update(value)
        else:
            node[path[-1]] = value
    return OmegaConf.create(out)


# The FedDST reference code's behaviour (bibikar/feddst dst.py, models.py, datasets.py; see
# fedsparse/fl/strategies/feddst.py), switched on together by `faithful=true`. Each is a setting of
# its own: a key given in the same place as `faithful=true`, or later, keeps its own value.
FAITHFUL_SETTINGS: dict[str, Any] = {
    "criterion": "magnitude",          # initial mask: largest |w| of the initial weights per layer
    "budget": "feddst_erk",            # its "ERK": per-layer sparsities near S
    "normalize": "reference",          # fixed constants (CIFAR-10: 0.4914/0.4822/0.4465, 0.2023/...)
    "alpha_schedule": "constant",      # the cosine only decides whether; the amount is alpha
    "readjust_counter": "zero",        # its 0-based round counter: readjust on rounds 2, 17, 32, ...
    "regrow_train_epochs": 0,          # readjust after the last local epoch
    "readjust_gradient": "last_batch", # gradient of the last (remainder) minibatch
    "batch_order": "fixed",            # each client's batch order fixed once
    "regrow_from": "all",              # regrowth among all coordinates (active ones reset to zero)
    "double_softmax": True,            # softmax output fed to CrossEntropyLoss
    "sample_with_replacement": True,   # rng.choice(clients, size=k) with replacement
    "aggregation_weight": "batches",   # its train_size(): 2 x the number of local batches
}


def _names(kind: str) -> list[str]:
    """Allowed names of one pluggable kind, read from its registry."""
    from fedsparse import registries

    return registries.names(kind)


Check = Callable[[Any, "Config"], str | None]


def allows(text: str | Callable[[], str]) -> Callable[[Check], Check]:
    """Record what a check accepts (a text, or a function giving it) as its `allowed` attribute,
    which `--help` lists (fedsparse/usage.py)."""
    def mark(check: Check) -> Check:
        check.allowed = text  # type: ignore[attr-defined]
        return check

    return mark


def describe(check: Check) -> str:
    """What `check` accepts: its `allowed` text, else the first line of its docstring."""
    allowed = getattr(check, "allowed", None)
    if callable(allowed):
        return allowed()
    if allowed:
        return allowed
    return (check.__doc__ or "checked when loaded (see docs/config.md)").strip().splitlines()[0]


def _range(lo: float | None = None, hi: float | None = None, lo_open: bool = False,
           hi_open: bool = False, optional: bool = False) -> Check:
    def check(v: Any, _: Config) -> str | None:
        if v is None and optional:
            return None
        if v is None or not math.isfinite(v):
            return "a finite number"
        bad_lo = lo is not None and (v <= lo if lo_open else v < lo)
        bad_hi = hi is not None and (v >= hi if hi_open else v > hi)
        return f"in {interval}" if bad_lo or bad_hi else None

    interval = (f"{'(' if lo_open else '['}{'-inf' if lo is None else lo}, "
                f"{'inf' if hi is None else hi}{')' if hi_open else ']'}")
    return allows(f"null or {interval}" if optional else interval)(check)


def _choice(kind: str) -> Check:
    def check(v: Any, _: Config) -> str | None:
        allowed = _names(kind)
        return None if v in allowed else f"one of: {', '.join(allowed)}"

    return allows(lambda: f"one of: {', '.join(_names(kind))}")(check)


def _literal(*allowed: str) -> Check:
    text = f"one of: {', '.join(allowed)}"
    return allows(text)(lambda v, _: None if v in allowed else text)


@allows("a non-empty name without '/'")
def _nonempty(v: Any, _: Config) -> str | None:
    return None if isinstance(v, str) and v.strip() and "/" not in v else "a non-empty name without '/'"


@allows("[1, num_clients]")
def _clients_per_round(v: Any, c: Config) -> str | None:
    if v < 1 or v > c.data.num_clients:
        return f"in [1, num_clients={c.data.num_clients}]"
    return None


@allows("null (= rounds // 2) or [0, rounds]")
def _readjust_until(v: Any, c: Config) -> str | None:
    return None if v is None or 0 <= v <= c.train.rounds else f"null or in [0, rounds={c.train.rounds}]"


@allows("[0, local_epochs]")
def _regrow_epochs(v: Any, c: Config) -> str | None:
    return None if 0 <= v <= c.train.local_epochs else f"in [0, local_epochs={c.train.local_epochs}]"


def _grow_rules() -> str:
    from fedsparse.sparse.prune_grow import GROW_RULES

    return f"one of: {', '.join(GROW_RULES.names())}"


@allows(_grow_rules)
def _growth(v: Any, _: Config) -> str | None:
    from fedsparse.sparse.prune_grow import GROW_RULES

    return None if v in GROW_RULES else _grow_rules()


@allows("one of: dataset, reference (reference: datasets with the reference code's constants)")
def _normalize(v: Any, c: Config) -> str | None:
    from fedsparse.data.reference_stats import REFERENCE_STATS

    if v == "reference" and c.data.dataset not in REFERENCE_STATS:
        return (f"'dataset' for dataset={c.data.dataset!r} (the reference constants exist for "
                f"{', '.join(sorted(REFERENCE_STATS))})")
    return _literal("dataset", "reference")(v, c)


@allows("null or an existing file")
def _existing_file(v: Any, _: Config) -> str | None:
    if v is None:
        return None
    return None if Path(os.path.expanduser(v)).is_file() else "null or an existing file (not found)"


@allows("null or an existing scorer file; required by criterion=learned")
def _scorer_path(v: Any, c: Config) -> str | None:
    if v is None and c.mask.criterion == "learned":
        return "a scorer file (python -m simulations.train_scorer) when criterion='learned'"
    return _existing_file(v, c)


def _option_list(registry: Any) -> str:
    """"name: its options | ..." for the plugins of `registry` that have options."""
    from fedsparse.plugin_options import describe_options

    described = {name: describe_options(registry.options_class(name)) for name in registry.names()}
    return " | ".join(f"{name}: {text}" for name, text in described.items() if text != "none")


def _criterion_option_list() -> str:
    from fedsparse.sparse.criteria import CRITERIA

    return _option_list(CRITERIA)


@allows(lambda: f"the selected criterion's options ({_criterion_option_list()})")
def _criterion_options(v: Any, c: Config) -> str | None:
    """Build the initial mask's spec: ConfigError naming the bad option, or a bad combination of
    the mask keys (granularity with input_keep or mask_ablation)."""
    from fedsparse.sparse.mask_spec import MaskSpec

    MaskSpec.from_config(c)
    return None


def _strategy_option_list() -> str:
    from fedsparse.fl.strategies.registry import STRATEGIES

    return _option_list(STRATEGIES)


@allows(lambda: f"the selected strategy's options ({_strategy_option_list()})")
def _strategy_options(v: Any, c: Config) -> str | None:
    """ConfigError naming the bad option (checked against the selected strategy's options)."""
    from fedsparse.fl.strategies.registry import STRATEGIES, strategy_options

    if c.train.strategy in STRATEGIES:
        options = strategy_options(c)
        check = getattr(options, "check_config", None)  # keys of the run the strategy cannot take
        if callable(check) and (problem := check(c)) is not None:
            raise ConfigError(f"strategy={c.train.strategy!r} is invalid with {problem}")
    return None


@allows(lambda: f"one of: {', '.join(_granularities())}")
def _granularity(v: Any, _: Config) -> str | None:
    return None if v in _granularities() else f"one of: {', '.join(_granularities())}"


def _granularities() -> list[str]:
    from fedsparse.sparse.select import GRANULARITIES

    return GRANULARITIES.names()


@allows("(0, 1]; 1.0 when keep_first_dense=true")
def _input_keep(v: Any, c: Config) -> str | None:
    problem = _range(0, 1, lo_open=True)(v, c)
    if problem is None and v < 1 and c.mask.keep_first_dense:
        return "1.0 when keep_first_dense=true (input selection masks the first layer)"
    return problem


@allows("null ($FEDSPARSE_DATA, else torchvision) or an existing folder or archive")
def _data_dir(v: Any, _: Config) -> str | None:
    if v is None:
        return None
    return None if Path(os.path.expanduser(v)).exists() else "an existing folder or archive (not found)"


def checkpoint_round(run_folder: str | Path) -> int | None:
    """The round of a run folder's last checkpoint, or None when it has none (or it is unreadable)."""
    from fedsparse.metrics.run_folder import CHECKPOINT_DIR, CHECKPOINT_FILE

    try:
        meta = json.loads((Path(run_folder) / CHECKPOINT_DIR / CHECKPOINT_FILE).read_text())
        return int(meta["round"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


@allows("null or a run folder with a checkpoint and rounds left")
def _resume(v: Any, c: Config) -> str | None:
    if v is None:
        return None
    folder = Path(os.path.expanduser(v))
    if not (folder / "config.yaml").is_file():
        return "a run folder holding config.yaml (not found)"
    done = checkpoint_round(folder)
    if done is None:
        return ("a run folder with a readable checkpoint (none found: checkpoint_every=0, or the "
                "run was killed before round 0 ended)")
    if done >= c.train.rounds:
        return (f"a run with rounds left; its checkpoint is at round {done} of rounds={c.train.rounds}: "
                f"pass rounds=N > {done} to continue it")
    return None


@allows("one of: auto, classes, proportional, iid (not auto: splits with test sets to choose)")
def _client_test(v: Any, c: Config) -> str | None:
    allowed = ("auto", "classes", "proportional", "iid")
    if v not in allowed:
        return f"one of: {', '.join(allowed)}"
    if v != "auto":
        from fedsparse.data.splits import split_params

        if "test_split" not in split_params(c.data.split):
            return f"'auto' with split={c.data.split!r} (only splits with test sets to choose take another value)"
    return None


@allows("null or a non-empty string")
def _optional_text(v: Any, _: Config) -> str | None:
    return None if v is None or (isinstance(v, str) and v.strip()) else "null or a non-empty string"


@allows("0.0 with client_device=cpu, (0, 1] with client_device=cuda")
def _client_gpus(v: Any, c: Config) -> str | None:
    if v is None or not math.isfinite(v):
        return "a finite number"
    if c.runtime.client_device == "cuda":
        return None if 0 < v <= 1 else ("in (0, 1] with client_device='cuda' (the fraction of a GPU "
                                        "each client actor reserves)")
    return None if v == 0 else "0.0 with client_device='cpu' (CPU clients reserve no GPU)"


@allows("a folder path")
def _folder(v: Any, _: Any) -> str | None:
    return None if isinstance(v, str) and v else "a folder path"


CHECKS: dict[str, Check] = {
    "name": _nonempty,
    "seed": _range(0, 2**31 - 1),
    "dataset": _choice("dataset"),
    "data_dir": _data_dir,
    "split": _choice("split"),
    "num_clients": _range(1, 1_000_000),
    "classes_per_client": _range(1, 1000),
    "samples_per_class": _range(1),
    "shards_per_client": _range(1, 1000),
    "dirichlet_alpha": _range(0, lo_open=True),
    "client_test": _client_test,
    "model": _choice("model"),
    "init_checkpoint": _existing_file,
    "strategy": _choice("strategy"),
    "rounds": _range(1, 1_000_000),
    "clients_per_round": _clients_per_round,
    "local_epochs": _range(1, 10_000),
    "batch_size": _range(1, 1_000_000),
    "lr": _range(0, lo_open=True),
    "momentum": _range(0, 1, hi_open=True),
    "weight_decay": _range(0),
    "proximal_mu": _range(0, optional=True),
    "server_lr": _range(0, lo_open=True),
    "server_momentum": _range(0, 1, hi_open=True),
    "sparsity": allows("[0, 1), and at most what leaves one weight in every masked layer")(
        _range(0, 1, hi_open=True)),
    "budget": _choice("budget"),
    "criterion": _choice("criterion"),
    "scoring": _literal("server", "federated"),
    "score_samples": _range(1, 100_000),
    "mask_ablation": _literal("none", "shuffle", "reinit", "invert"),
    "input_keep": _input_keep,
    "scorer_path": _scorer_path,
    "scope": _literal("layer", "global"),
    "granularity": _granularity,
    "criterion_options": _criterion_options,
    "alpha": _range(0, 1),
    "alpha_schedule": _choice("schedule"),
    "readjust_every": _range(1, 1_000_000),
    "readjust_until": _readjust_until,
    "regrow_train_epochs": _regrow_epochs,
    "readjust_gradient": _literal("batch", "epoch", "last_batch"),
    "growth": _growth,
    "normalize": _normalize,
    "batch_order": _literal("shuffle", "fixed"),
    "regrow_from": _literal("inactive", "all"),
    "readjust_counter": _literal("one", "zero"),
    "aggregation_weight": _literal("samples", "batches"),
    "strategy_options": _strategy_options,
    "codec": _choice("codec"),
    "value_dtype": _choice("value_dtype"),
    "eval_every": _range(1, 1_000_000),
    "max_upload_gb": _range(0, lo_open=True, optional=True),
    "output_dir": _folder,
    "num_actors": _range(1, 4096, optional=True),
    "client_device": _literal("cpu", "cuda"),
    "client_gpus": _client_gpus,
    "server_device": _literal("auto", "cpu", "cuda"),
    "log_level": _literal("debug", "info", "warning", "error"),
    "logger": _choice("logger"),
    "ray_address": _optional_text,
    "checkpoint_every": _range(0, 1_000_000),
    "client_failure_rate": _range(0, 1, hi_open=True),
    "client_dropout_rate": _range(0, 1, hi_open=True),
    "resume": _resume,
}

RESUME_OVERRIDABLE = ("rounds", "progress", "num_actors", "ray_address", "logger", "log_level",
                      "flower_patches")
"""Fields `resume=` accepts alongside it: they extend the run or change only how it is executed."""


def check_fields(cfg: Any, checks: dict[str, Check],
                 value_of: Callable[[Any, str], Any] = getattr) -> None:
    """Run `checks` over `cfg`'s settings (`value_of(cfg, name)`); raise ConfigError naming the
    first bad one and what is allowed. Shared by every config dataclass of the project."""
    for name, check in checks.items():
        value = value_of(cfg, name)
        problem = check(value, cfg)
        if problem is not None:
            raise ConfigError(f"{name}={value!r} is invalid: must be {problem}")


def validate(cfg: Config) -> Config:
    """Check every setting of the federated config (CHECKS, by flat name)."""
    check_fields(cfg, CHECKS, lambda c, name: get_path(c, FLAT[name]))
    return cfg


def resolve(cfg: Config) -> Config:
    """Fill derived settings (readjust_until = rounds/2)."""
    if cfg.readjust.readjust_until is None:
        return cfg.with_(readjust_until=cfg.train.rounds // 2)
    return cfg


def faithful_position(layers: Sequence[Any]) -> int | None:
    """Where `FAITHFUL_SETTINGS` go among the config layers (files, then the command line): right
    before the last layer that sets `faithful`, when it sets it to true, so that keys given in that
    layer or a later one keep their own values. None when `faithful` ends up false or unset."""
    last = None
    for i, layer in enumerate(layers):
        if isinstance(layer, DictConfig) and "faithful" in layer:
            last = i if str(layer["faithful"]).lower() == "true" else None
    return last


def _named_path(name: str) -> Path:
    path = Path(name)
    return path if path.suffix in (".yaml", ".yml") else CONFIG_DIR / f"{name}.yaml"


def _config_path(name: str) -> Path:
    path = _named_path(name)
    if not path.is_file():
        available = ", ".join(sorted(p.stem for p in CONFIG_DIR.glob("*.yaml")))
        raise ConfigError(f"config={name!r}: file not found; give a YAML path or one of: {available}")
    return path


def load_named(load: Callable[[Sequence[str], str], T], argv: Sequence[str], default: str, example: str) -> T:
    """`load(argv, default)`, a command's loader of the config file `config=NAME_OR_PATH` (else
    `default`) and its `key=value` arguments. When that file does not exist or is one under
    configs/ that `load` does not take (made for another command), its error is one line naming
    the configs/ files `load` takes as they are."""
    config_arg, _ = split_config_arg(argv, example)
    try:
        return load(argv, default)
    except ConfigError as e:
        raise _own_configs(e, config_arg or default, lambda args: load(args, default)) from None


def _own_configs(error: ConfigError, config: str, load: Callable[[Sequence[str]], object]) -> ConfigError:
    path = _named_path(config)
    if path.is_file() and path.resolve().parent != CONFIG_DIR:
        return error
    names = [p.stem for p in sorted(CONFIG_DIR.glob("*.yaml")) if _loads(load, p)]
    if path.is_file() and path.stem in names:
        return error
    problem = "file not found" if not path.is_file() else f"configs/{path.name} is for another command"
    return ConfigError(f"config={config!r}: {problem}; give a YAML path or one of: {', '.join(names)}")


def _loads(load: Callable[[Sequence[str]], object], path: Path) -> bool:
    try:
        load([f"config={path}"])
    except ConfigError:
        return False
    return True


def _short(e: OmegaConfBaseException) -> str:
    return str(e).splitlines()[0]


def split_config_arg(argv: Sequence[str], example: str) -> tuple[str | None, list[str]]:
    """The last `config=NAME_OR_PATH` of `argv` (None if absent) and the other `key=value`
    arguments; an argument without `=` is a ConfigError showing `example`."""
    config_arg: str | None = None
    overrides: list[str] = []
    for arg in argv:
        if "=" not in arg:
            raise ConfigError(f"argument {arg!r}: expected key=value (e.g. {example})")
        key, value = arg.split("=", 1)
        if key == "config":
            config_arg = value
        else:
            overrides.append(arg)
    return config_arg, overrides


def read_yaml(path: Path) -> Any:
    """The YAML content of a config file; ConfigError naming the file if it cannot be read."""
    try:
        return OmegaConf.load(path)
    except Exception as e:  # noqa: BLE001 - any YAML problem is a config error
        raise ConfigError(f"config file {path}: cannot be read as YAML ({e})") from None


def allowed_keys(cls: type) -> str:
    """The hint appended to an unknown-key error of a settings dataclass."""
    return f"; allowed keys: {', '.join(f.name for f in dataclasses.fields(cls))}"


def merge_error(e: OmegaConfBaseException, source: str, unknown_hint: str,
                names: Sequence[str] = ()) -> ConfigError:
    """A typed-merge failure as one line naming the key and where it came from (`source`), with
    `unknown_hint` added when the key does not exist, after the closest of `names` if one is near
    (OmegaConf names near fields itself, but not the flat names of a sectioned config)."""
    key = getattr(e, "full_key", None) or "?"
    message, hint = _short(e), ""
    if "not in" in message:
        near = [] if "did you mean" in message.lower() else difflib.get_close_matches(
            key.rsplit(".", 1)[-1], names, n=1)
        hint = (f"; did you mean {near[0]}?" if near else "") + unknown_hint
    return ConfigError(f"{key} ({source}): {message}{hint}")


def load_config(default: str, argv: Sequence[str] = ()) -> Config:
    """Load `default` (a name under configs/ or a YAML path), then apply `key=value` arguments.

    `config=NAME_OR_PATH` among the arguments replaces the default file.
    """
    return load_named(_load_config, argv, default, "rounds=20")


def _load_config(argv: Sequence[str], default: str) -> Config:
    config_arg, overrides = split_config_arg(argv, "rounds=20")
    default = config_arg or default
    resume = [arg.split("=", 1)[1] for arg in overrides if flat_name(arg.split("=", 1)[0]) == "resume"]
    if resume and resume[-1] not in ("", "null"):
        default, overrides = _resume_args(resume[-1], config_arg, overrides)
    hint = "; see docs/config.md for the list of settings"
    layers = _file_layers(_config_path(default))
    try:
        layers.append(("command line", sectioned(OmegaConf.from_dotlist(overrides), "command line")))
    except OmegaConfBaseException as e:
        raise merge_error(e, "command line", hint, list(FLAT)) from None
    at = faithful_position([layer for _, layer in layers])
    if at is not None:
        layers.insert(at, ("faithful=true", sectioned(FAITHFUL_SETTINGS, "faithful=true")))
    merged = OmegaConf.structured(Config)
    for source, layer in layers:
        try:
            merged = OmegaConf.merge(merged, layer)
        except OmegaConfBaseException as e:
            raise merge_error(e, source, hint, list(FLAT)) from None
    cfg = OmegaConf.to_object(merged)
    assert isinstance(cfg, Config)
    cfg = resolve(validate(cfg))
    from fedsparse.preflight import check_model_fit  # the model's shapes, before any data loads

    check_model_fit(cfg)
    return cfg


def _file_layers(path: Path, seen: tuple[Path, ...] = ()) -> list[tuple[str, Any]]:
    """The YAML layers of a config file: those of the file it `extends` (a config name or path),
    then its own keys."""
    if path in seen:
        raise ConfigError(f"config file {path}: 'extends' loops back to itself")
    layer = read_yaml(path)
    parent = layer.pop("extends", None) if isinstance(layer, DictConfig) else None
    own = [(str(path), sectioned(layer, str(path)))]
    if parent is None:
        return own
    return _file_layers(_config_path(str(parent)), (*seen, path)) + own


def _resume_args(run: str, config_arg: str | None, overrides: list[str]) -> tuple[str, list[str]]:
    """`resume=RUN`: the base file is the run's own config.yaml; only RESUME_OVERRIDABLE may change."""
    if config_arg is not None:
        raise ConfigError(f"config={config_arg!r} cannot be combined with resume={run!r}: "
                          "a resumed run uses its own config.yaml")
    for arg in overrides:
        key = flat_name(arg.split("=", 1)[0])
        if key not in (*RESUME_OVERRIDABLE, "resume"):
            raise ConfigError(f"{key} cannot be changed when resuming (resume={run!r}); only "
                              f"{', '.join(RESUME_OVERRIDABLE)} can")
    folder = Path(os.path.expanduser(run))
    if not (folder / "config.yaml").is_file():
        raise ConfigError(f"resume={run!r} is invalid: must be a run folder holding config.yaml (not found)")
    rest = [a for a in overrides if flat_name(a.split("=", 1)[0]) != "resume"]
    return str(folder / "config.yaml"), [*rest, f"resume={folder.resolve()}"]


def config_from_yaml(text: str) -> Config:
    """Rebuild a resolved Config from `Config.to_yaml()` or `wire_yaml()` output, or an older run
    folder's flat config.yaml (used by clients and resume)."""
    merged = OmegaConf.merge(OmegaConf.structured(Config), sectioned(OmegaConf.create(text), "config text"))
    cfg = OmegaConf.to_object(merged)
    assert isinstance(cfg, Config)
    return cfg
