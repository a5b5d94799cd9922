"""The run configuration: one flat typed dataclass, YAML files + `key=value` overrides, validation.

Loading goes through OmegaConf (typed merge of YAML and dot-list overrides); `validate` then checks
every field's range and every registry name, so bad input fails before any work starts with one
message naming the field and what is allowed.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from fedsparse.errors import ConfigError

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"


@dataclass
class Config:
    """Every setting of a run. Defaults are the FedDST paper's CIFAR-10 setting."""

    name: str = "cifar_noniid"
    """run folder prefix: <output_dir>/<name>-<date>-<time>-s<seed>/"""
    seed: int = 0
    """seeds split, model init, sampling, client RNGs, server scoring"""
    # data
    dataset: str = "cifar10"
    """dataset to load"""
    data_dir: str | None = None
    """local data folder or archive; null = $FEDSPARSE_DATA, else torchvision"""
    download: bool = True
    """allow torchvision to download when no local copy is found"""
    split: str = "pathological"
    """how train (and test) images are divided over clients"""
    num_clients: int = 400
    """number of clients (= Flower nodes, one partition each)"""
    classes_per_client: int = 2
    """pathological: shards (of one label each) per client"""
    samples_per_class: int = 20
    """pathological: images per shard"""
    reuse_shards: bool = False
    """pathological: draw each client's shards regardless of other clients' (clients may share
    images), so num_clients x classes_per_client may exceed the shards the data holds"""
    shards_per_client: int = 2
    """shards: shards per client"""
    dirichlet_alpha: float = 0.1
    """dirichlet: concentration (not FedDST's alpha)"""
    client_test: str = "auto"
    """clients' local test sets (auto: as the split defines them); see docs/config.md"""
    augment: bool = False
    """random crop (pad 4) + horizontal flip in client training"""
    # model
    model: str = "cifar10_net"
    """network (cifar10_net needs 3x32x32, mnist_net 1x28x28 inputs)"""
    keep_first_dense: bool = False
    """leave the first Conv/Linear weight unmasked"""
    keep_last_dense: bool = False
    """leave the last Conv/Linear weight unmasked"""
    init_checkpoint: str | None = None
    """initial weights: a state_dict saved with torch.save, read with torch.load(weights_only=True)
    (e.g. a centrally pre-trained model; see docs/pruning-bench.md)"""
    # federated training
    strategy: str = "feddst"
    """server strategy"""
    rounds: int = 400
    """federated rounds"""
    clients_per_round: int = 20
    """clients sampled per round (distinct unless sample_with_replacement)"""
    local_epochs: int = 10
    """local epochs per round"""
    batch_size: int = 32
    """client batch size"""
    lr: float = 0.01
    """client SGD learning rate"""
    momentum: float = 0.9
    """client SGD momentum"""
    weight_decay: float = 1e-3
    """client SGD weight decay"""
    proximal_mu: float | None = None
    """proximal term mu/2 ‖w − w_global‖²; null = 0, except 0.01 for fedprox"""
    server_lr: float = 1.0
    """fedavgm server learning rate"""
    server_momentum: float = 0.9
    """fedavgm server momentum"""
    # sparsity
    sparsity: float = 0.8
    """pruned fraction of the masked weights (density = 1 − sparsity); sparse strategies only"""
    budget: str = "erk"
    """per-layer kept counts at that density (initial mask and FedDST prune-back)"""
    criterion: str = "random"
    """scores for the initial mask (fixed_mask, feddst); synflow is data-free and ignores scoring"""
    scoring: str = "server"
    """score on the server with score_samples seeded training images, or on the round-0 sampled
    clients (averaged by sample count)"""
    score_samples: int = 256
    """images of the server's proxy set (scoring=server)"""
    mask_ablation: str = "none"
    """layer-wise ablation of the initial mask: shuffle kept positions within each layer (same
    per-layer counts), re-initialise the kept weights (fresh seeded init, same mask), or keep the
    lowest-ranked weights (negated scores; SynFlow: its one-shot scores)"""
    input_keep: float = 1.0
    """induced feature selection: keep this fraction of the first layer's inputs (MLP: pixels; CNN:
    input channels) ranked by the criterion's summed first-layer scores; the other inputs'
    columns are masked (zero)"""
    scorer_path: str | None = None
    """the learned criterion's scorer (python -m simulations.train_scorer); its option
    `scorer_path`, kept as a key of its own"""
    criterion_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    """options of the selected criterion (e.g. criterion_options.temperature=200 for grasp), each
    checked against that criterion's options dataclass (docs/config.md)"""
    scope: str = "layer"
    """initial mask: per-layer counts from budget (layer) or one ranking across layers (global)"""
    granularity: str = "unstructured"
    """initial mask: keep single weights, whole output channels (conv filters, Linear rows) or
    whole input slices; needs input_keep=1.0 and no shuffle ablation when structured. SynFlow
    ranks its one-shot scores then; feddst readjusts single weights from that mask"""
    # FedDST mask readjustment
    alpha: float = 0.01
    """readjustment ratio: drop fraction scale"""
    alpha_schedule: str = "cosine"
    """drop fraction schedule(round, readjust_until, alpha)"""
    readjust_every: int = 15
    """readjust on rounds with (t − 1) % readjust_every == 0 (t: see readjust_counter)"""
    readjust_until: int | None = None
    """readjust only while t < readjust_until; null = rounds // 2"""
    regrow_train_epochs: int = 1
    """local epochs trained after readjusting (the rest before)"""
    readjust_gradient: str = "epoch"
    """regrowth gradient from one random batch, one pass over the client's data, or the last
    minibatch trained on"""
    growth: str = "gradient"
    """growth rule ranking the weights to regrow (GROW_RULES: gradient = largest |dL/dw|, random =
    uniform)"""
    faithful: bool = False
    """switch on every behaviour of the FedDST reference code (FAITHFUL_SETTINGS, docs/config.md)"""
    # behaviours of the FedDST reference code, each switched on by faithful=true
    normalize: str = "dataset"
    """input normalisation: the images' own statistics, or the reference's constants"""
    batch_order: str = "shuffle"
    """client minibatches reshuffled every epoch, or one seeded order per client"""
    regrow_from: str = "inactive"
    """coordinates regrowth picks from (all: active ones too, reset to zero)"""
    double_softmax: bool = False
    """softmax on the model output before the cross-entropy loss"""
    readjust_counter: str = "one"
    """readjustment schedule counts rounds from one, or from zero (reference)"""
    sample_with_replacement: bool = False
    """draw the round's clients with replacement"""
    aggregation_weight: str = "samples"
    """a client update's weight: its samples, or its local batches"""
    # communication
    codec: str = "auto"
    """mask position encoding; auto = smallest of bitmap/index/golomb per tensor"""
    value_dtype: str = "float32"
    """dtype weights travel in (float16/bfloat16 are lossy)"""
    # evaluation and runtime
    eval_every: int = 10
    """server-side evaluation every N rounds (also round 0 and the last round)"""
    max_upload_gb: float | None = None
    """stop after the round in which the cumulative upload reaches this many GB (10^9 bytes),
    evaluating that round; null = run all rounds (simulations.compare sets it for dense methods)"""
    output_dir: str = "runs"
    """parent folder of run folders"""
    num_actors: int | None = None
    """Ray client actors (1 CPU each); null = the CPU count (with client_device=cuda: at most
    GPUs / client_gpus)"""
    client_device: str = "cpu"
    """device the clients train on; cuda: each client actor reserves client_gpus of a GPU"""
    client_gpus: float = 0.0
    """fraction of a GPU each client actor reserves (Ray's num_gpus); 0.25: four actors share one"""
    server_device: str = "auto"
    """server aggregation/evaluation device; auto = CUDA if visible. cuda without a visible GPU is
    rejected when the ServerApp starts (after Ray), not by validate"""
    progress: bool = True
    """rich progress bar on a terminal; false (or no terminal) = one plain line per round"""
    log_level: str = "warning"
    """console log level (stderr); warning: only what is wrong; debug (the -v flag) adds Flower's
    and fedsparse's debug records, Ray's info and Flower's routine notices. May be given with
    resume="""
    logger: str = "none"
    """also log each round's metrics to an experiment tracker: tensorboard writes event files to
    <run>/tensorboard/ (metrics.jsonl and metrics.csv are always written)"""
    ray_address: str | None = None
    """join an existing Ray cluster at HOST:PORT (ray start --head) instead of starting one; only
    the address goes to ray.init, the cluster's CPUs (and GPUs) decide the number of client actors
    (num_actors unused). See README "Running on a Ray cluster"."""
    flower_patches: bool = True
    """speed up Flower's simulation engine through its private internals (fl/flower_patches/, flwr
    1.41.x only); false = Flower's own code: slower, the same metrics (the server asks every node
    its partition: summary.json's node_discovery). FEDSPARSE_FLOWER_PATCHES=0 forces them off"""
    # reliability: checkpoints, resuming, injected client faults
    checkpoint_every: int = 10
    """write a checkpoint after round 0, every N-th round and the last round (<run>/checkpoint/); 0
    = none (and nodes keep their mask in Flower's context.state instead of on disk)"""
    resume: str | None = None
    """continue that run from its checkpoint, with its own config.yaml (README "Checkpoints")"""
    client_failure_rate: float = 0.0
    """probability that a sampled client raises instead of replying (Flower error reply, counted in
    failures.errors); drawn per (seed, round, partition)"""
    client_dropout_rate: float = 0.0
    """probability that a sampled client's reply is lost on the way: the server discards it unread
    (failures.dropped), its upload bytes are not counted; drawn per (seed, round, partition)"""

    def to_yaml(self) -> str:
        return OmegaConf.to_yaml(OmegaConf.structured(self))

    def wire_yaml(self) -> str:
        """The keys that differ from their defaults, as YAML (`config_from_yaml` restores the
        rest): the config a node receives in its setup, so that a key added at its default, or a
        moved one, changes no run's bytes. Keys only the driver reads (`DRIVER_ONLY`) are left out."""
        default = Config()
        changed = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                   if f.name not in DRIVER_ONLY and getattr(self, f.name) != getattr(default, f.name)}
        return OmegaConf.to_yaml(OmegaConf.create(changed))


DRIVER_ONLY = ("flower_patches",)
"""Keys that only the process running the simulation reads; nodes never receive them."""


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
    if v < 1 or v > c.num_clients:
        return f"in [1, num_clients={c.num_clients}]"
    return None


@allows("null (= rounds // 2) or [0, rounds]")
def _readjust_until(v: Any, c: Config) -> str | None:
    return None if v is None or 0 <= v <= c.rounds else f"null or in [0, rounds={c.rounds}]"


@allows("[0, local_epochs]")
def _regrow_epochs(v: Any, c: Config) -> str | None:
    return None if 0 <= v <= c.local_epochs else f"in [0, local_epochs={c.local_epochs}]"


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

    if v == "reference" and c.dataset not in REFERENCE_STATS:
        return (f"'dataset' for dataset={c.dataset!r} (the reference constants exist for "
                f"{', '.join(sorted(REFERENCE_STATS))})")
    return _literal("dataset", "reference")(v, c)


@allows("null or an existing file")
def _existing_file(v: Any, _: Config) -> str | None:
    if v is None:
        return None
    return None if Path(os.path.expanduser(v)).is_file() else "null or an existing file (not found)"


@allows("null or an existing scorer file; required by criterion=learned")
def _scorer_path(v: Any, c: Config) -> str | None:
    if v is None and c.criterion == "learned":
        return "a scorer file (python -m simulations.train_scorer) when criterion='learned'"
    return _existing_file(v, c)


def _criterion_option_list() -> str:
    from fedsparse.plugin_options import describe_options
    from fedsparse.sparse.criteria import CRITERIA

    return " | ".join(f"{name}: {describe_options(CRITERIA.options_class(name))}"
                      for name in CRITERIA.names()
                      if describe_options(CRITERIA.options_class(name)) != "none")


@allows(lambda: f"the selected criterion's options ({_criterion_option_list()})")
def _criterion_options(v: Any, c: Config) -> str | None:
    """Build the initial mask's spec: ConfigError naming the bad option, or a bad combination of
    the mask keys (granularity with input_keep or mask_ablation)."""
    from fedsparse.sparse.mask_spec import MaskSpec

    MaskSpec.from_config(c)
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
    if problem is None and v < 1 and c.keep_first_dense:
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
    if done >= c.rounds:
        return (f"a run with rounds left; its checkpoint is at round {done} of rounds={c.rounds}: "
                f"pass rounds=N > {done} to continue it")
    return None


@allows("one of: auto, classes, proportional, iid (not auto: splits with test sets to choose)")
def _client_test(v: Any, c: Config) -> str | None:
    allowed = ("auto", "classes", "proportional", "iid")
    if v not in allowed:
        return f"one of: {', '.join(allowed)}"
    if v != "auto":
        from fedsparse.data.splits import split_params

        if "test_split" not in split_params(c.split):
            return f"'auto' with split={c.split!r} (only splits with test sets to choose take another value)"
    return None


@allows("null or a non-empty string")
def _optional_text(v: Any, _: Config) -> str | None:
    return None if v is None or (isinstance(v, str) and v.strip()) else "null or a non-empty string"


@allows("0.0 with client_device=cpu, (0, 1] with client_device=cuda")
def _client_gpus(v: Any, c: Config) -> str | None:
    if v is None or not math.isfinite(v):
        return "a finite number"
    if c.client_device == "cuda":
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


def check_fields(cfg: Any, checks: dict[str, Check]) -> None:
    """Run `checks` over `cfg`'s fields; raise ConfigError naming the first bad one and what is
    allowed. Shared by every config dataclass of the project."""
    for field, check in checks.items():
        value = getattr(cfg, field)
        problem = check(value, cfg)
        if problem is not None:
            raise ConfigError(f"{field}={value!r} is invalid: must be {problem}")


def validate(cfg: Config) -> Config:
    """Check every field of the federated config."""
    check_fields(cfg, CHECKS)
    return cfg


def resolve(cfg: Config) -> Config:
    """Fill derived settings (readjust_until = rounds/2)."""
    if cfg.readjust_until is None:
        return dataclasses.replace(cfg, readjust_until=cfg.rounds // 2)
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


def _config_path(name: str) -> Path:
    path = Path(name)
    if path.suffix not in (".yaml", ".yml"):
        path = CONFIG_DIR / f"{name}.yaml"
    if not path.is_file():
        available = ", ".join(sorted(p.stem for p in CONFIG_DIR.glob("*.yaml")))
        raise ConfigError(f"config={name!r}: file not found; give a YAML path or one of: {available}")
    return path


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


def merge_error(e: OmegaConfBaseException, source: str, unknown_hint: str) -> ConfigError:
    """A typed-merge failure as one line naming the key and where it came from (`source`), with
    `unknown_hint` added when the key does not exist."""
    key = getattr(e, "full_key", None) or "?"
    hint = unknown_hint if "not in" in _short(e) else ""
    return ConfigError(f"{key} ({source}): {_short(e)}{hint}")


def load_config(default: str, argv: Sequence[str] = ()) -> Config:
    """Load `default` (a name under configs/ or a YAML path), then apply `key=value` arguments.

    `config=NAME_OR_PATH` among the arguments replaces the default file.
    """
    config_arg, overrides = split_config_arg(argv, "rounds=20")
    default = config_arg or default
    resume = [arg.split("=", 1)[1] for arg in overrides if arg.split("=", 1)[0] == "resume"]
    if resume and resume[-1] not in ("", "null"):
        default, overrides = _resume_args(resume[-1], config_arg, overrides)
    hint = "; see docs/config.md for the list of settings"
    layers = _file_layers(_config_path(default))
    try:
        layers.append(("command line", OmegaConf.from_dotlist(overrides)))
    except OmegaConfBaseException as e:
        raise merge_error(e, "command line", hint) from None
    at = faithful_position([layer for _, layer in layers])
    if at is not None:
        layers.insert(at, ("faithful=true", OmegaConf.create(FAITHFUL_SETTINGS)))
    merged = OmegaConf.structured(Config)
    for source, layer in layers:
        try:
            merged = OmegaConf.merge(merged, layer)
        except OmegaConfBaseException as e:
            raise merge_error(e, source, hint) from None
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
    own = [(str(path), layer)]
    if parent is None:
        return own
    return _file_layers(_config_path(str(parent)), (*seen, path)) + own


def _resume_args(run: str, config_arg: str | None, overrides: list[str]) -> tuple[str, list[str]]:
    """`resume=RUN`: the base file is the run's own config.yaml; only RESUME_OVERRIDABLE may change."""
    if config_arg is not None:
        raise ConfigError(f"config={config_arg!r} cannot be combined with resume={run!r}: "
                          "a resumed run uses its own config.yaml")
    for arg in overrides:
        key = arg.split("=", 1)[0]
        if key not in (*RESUME_OVERRIDABLE, "resume"):
            raise ConfigError(f"{key} cannot be changed when resuming (resume={run!r}); only "
                              f"{', '.join(RESUME_OVERRIDABLE)} can")
    folder = Path(os.path.expanduser(run))
    if not (folder / "config.yaml").is_file():
        raise ConfigError(f"resume={run!r} is invalid: must be a run folder holding config.yaml (not found)")
    rest = [a for a in overrides if a.split("=", 1)[0] != "resume"]
    return str(folder / "config.yaml"), [*rest, f"resume={folder.resolve()}"]


def config_from_yaml(text: str) -> Config:
    """Rebuild a resolved Config from `Config.to_yaml()` output (used by clients and resume)."""
    merged = OmegaConf.merge(OmegaConf.structured(Config), OmegaConf.create(text))
    cfg = OmegaConf.to_object(merged)
    assert isinstance(cfg, Config)
    return cfg
