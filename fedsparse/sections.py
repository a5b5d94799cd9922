"""The sections of the run configuration (data, model, train, mask, readjust, comm, runtime) and
the per-strategy options, as frozen dataclasses; `fedsparse.config.Config` holds one of each.

Every field name is unique across all sections (and the options nested in them), so a flat key
(`lr=0.1`) names one field wherever it lives; `flat_paths` finds it from these classes. A new
setting is a field here, with its docstring (shown by `--help`) and a check in `config.CHECKS`.
This module imports nothing of the project: the config and the sparse core load without Flower.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


# per-strategy options: one dataclass per strategy that has options of its own, declared for the
# strategy of that name (fedsparse/fl/strategies/<name>.py reads them as cfg.train.<name>)
@dataclass(frozen=True)
class FedProxOptions:
    """Options of `fedprox`: the clients' proximal term (every strategy's clients apply it)."""

    proximal_mu: float | None = None
    """proximal term mu/2 ‖w − w_global‖²; null = 0, except 0.01 for fedprox"""


@dataclass(frozen=True)
class FedAvgMOptions:
    """Options of `fedavgm`: the server's momentum step."""

    server_lr: float = 1.0
    """fedavgm server learning rate"""
    server_momentum: float = 0.9
    """fedavgm server momentum"""

@dataclass(frozen=True)
class DataConfig:
    """The data and its division over clients."""

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
    normalize: str = "dataset"
    """input normalisation: the images' own statistics, or the reference's constants"""


@dataclass(frozen=True)
class ModelConfig:
    """The network and its initial weights."""

    model: str = "cifar10_net"
    """network (cifar10_net needs 3x32x32, mnist_net 1x28x28 inputs)"""
    init_checkpoint: str | None = None
    """initial weights: a state_dict saved with torch.save, read with torch.load(weights_only=True)
    (e.g. a centrally pre-trained model; see docs/pruning-bench.md)"""


@dataclass(frozen=True)
class TrainConfig:
    """Federated training: the strategy, its rounds and the clients' local SGD."""

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
    fedprox: FedProxOptions = field(default_factory=FedProxOptions)
    """options of the fedprox strategy"""
    fedavgm: FedAvgMOptions = field(default_factory=FedAvgMOptions)
    """options of the fedavgm strategy"""
    batch_order: str = "shuffle"
    """client minibatches reshuffled every epoch, or one seeded order per client"""
    double_softmax: bool = False
    """softmax on the model output before the cross-entropy loss"""
    sample_with_replacement: bool = False
    """draw the round's clients with replacement"""
    aggregation_weight: str = "samples"
    """a client update's weight: its samples, or its local batches"""
    strategy_options: dict[str, Any] = field(default_factory=dict)
    """options of the selected strategy (e.g. strategy_options.adjust_every=20 for prunefl), each
    checked against that strategy's options dataclass (docs/config.md)"""


@dataclass(frozen=True)
class MaskConfig:
    """The sparse mask: density, per-layer budget and the initial mask's criterion."""

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
    criterion_options: dict[str, Any] = field(default_factory=dict)
    """options of the selected criterion (e.g. criterion_options.temperature=200 for grasp), each
    checked against that criterion's options dataclass (docs/config.md)"""
    scope: str = "layer"
    """initial mask: per-layer counts from budget (layer) or one ranking across layers (global)"""
    granularity: str = "unstructured"
    """initial mask: keep single weights, whole output channels (conv filters, Linear rows) or
    whole input slices; needs input_keep=1.0 and no shuffle ablation when structured. SynFlow
    ranks its one-shot scores then; feddst readjusts single weights from that mask"""
    keep_first_dense: bool = False
    """leave the first Conv/Linear weight unmasked"""
    keep_last_dense: bool = False
    """leave the last Conv/Linear weight unmasked"""


@dataclass(frozen=True)
class ReadjustConfig:
    """FedDST's mask readjustment (prune and regrow during training)."""

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
    regrow_from: str = "inactive"
    """coordinates regrowth picks from (all: active ones too, reset to zero)"""
    readjust_counter: str = "one"
    """readjustment schedule counts rounds from one, or from zero (reference)"""


@dataclass(frozen=True)
class CommConfig:
    """What travels between server and clients, and the upload cap."""

    codec: str = "auto"
    """mask position encoding; auto = smallest of bitmap/index/golomb per tensor"""
    value_dtype: str = "float32"
    """dtype weights travel in (float16/bfloat16 are lossy)"""
    max_upload_gb: float | None = None
    """stop after the round in which the cumulative upload reaches this many GB (10^9 bytes),
    evaluating that round; null = run all rounds (simulations.compare sets it for dense methods)"""


@dataclass(frozen=True)
class RuntimeConfig:
    """Evaluation, output, devices, logging, checkpoints, resuming and injected client faults."""

    eval_every: int = 10
    """server-side evaluation every N rounds (also round 0 and the last round)"""
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


SECTIONS: dict[str, type] = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig,
                             "mask": MaskConfig, "readjust": ReadjustConfig, "comm": CommConfig,
                             "runtime": RuntimeConfig}
"""Section name -> its dataclass, in the order `Config` holds them."""


def flat_paths(cls: type, prefix: tuple[str, ...] = ()) -> dict[str, tuple[str, ...]]:
    """Every leaf field of dataclass `cls` (recursing into nested option dataclasses): its flat
    name -> its attribute path. Raises ValueError when two fields share a name."""
    paths: dict[str, tuple[str, ...]] = {}
    for f in dataclasses.fields(cls):
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        found = (flat_paths(type(default), (*prefix, f.name)) if dataclasses.is_dataclass(default)
                 else {f.name: (*prefix, f.name)})
        for name, path in found.items():
            if name in paths:
                raise ValueError(f"config field {name!r} is declared twice: {paths[name]} and {path}")
            paths[name] = path
    return paths


def get_path(obj: Any, path: tuple[str, ...]) -> Any:
    """The value at attribute `path` of `obj`."""
    for part in path:
        obj = getattr(obj, part)
    return obj
