"""fedsparse's pruning-at-initialisation masks against the Synaptic-Flow reference code.

    python -m benchmarks.criteria_reference ref=/work/ref/synflow [models=[mnist_net,cifar10_net]]
        [sparsity=0.9] [samples=256] [seed=0]

Reference (Tanaka et al., NeurIPS 2020; github.com/ganguli-lab/Synaptic-Flow), imported from `ref`
at run time: Pruners/pruners.py (Mag, SNIP, GraSP, SynFlow; `Pruner._global_mask`), prune.py
(`prune_loop`, exponential schedule), Layers/layers.py (masked Linear / Conv2d),
Utils/generator.py (`masked_parameters`: weights, no biases). For each model, built once with
`seed`: a copy whose Conv2d / Linear layers are the reference's masked layers runs `prune_loop`
(global scope, eval mode, 1 epoch, 100 for iterative SynFlow); fedsparse runs `build_initial_mask`
(scope global, density 1 - sparsity) over the same weights (every Conv/Linear weight:
`prunable_names` with keep_first_dense = keep_last_dense = false) and the same batches (`samples`
seeded training images, normalised, in batches of `batch_size`, as the server's proxy set).
Prints per criterion the kept counts and overlap = |kept_ref & kept_ours| / |kept_ref|.
"""

from __future__ import annotations

import contextlib
import copy
import io
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from fedsparse import usage
from fedsparse.bench.args import load_dataclass
from fedsparse.config import _range, allows
from fedsparse.data import load_dataset, normalize
from fedsparse.errors import ConfigError, DataError
from fedsparse.models import build_model, prunable_names
from fedsparse.sparse.criteria import CRITERIA
from fedsparse.sparse.initial_mask import build_initial_mask
from fedsparse.sparse.mask_spec import CRITERION_OPTIONS_KEY, MaskSpec

DATASET = {"mnist_net": "mnist", "cifar10_net": "cifar10"}
# label: (fedsparse criterion, its options, reference Pruner class, its attributes, epochs)
CASES: dict[str, tuple[str, dict[str, Any], str, dict[str, Any], int]] = {
    "magnitude": ("magnitude", {}, "Mag", {}, 1),
    "snip": ("snip", {}, "SNIP", {}, 1),
    "synflow-1": ("synflow", {"iterations": 1}, "SynFlow", {}, 1),
    "synflow-100": ("synflow", {"iterations": 100}, "SynFlow", {}, 100),
    "grasp-T200": ("grasp", {"temperature": 200.0}, "GraSP", {"temp": 200.0}, 1),
    "grasp-T1": ("grasp", {"temperature": 1.0}, "GraSP", {"temp": 1.0}, 1),
    "grasp-T1/200": ("grasp", {"temperature": 1.0}, "GraSP", {}, 1),  # ours T=1, reference's own T
}


@dataclass
class CheckConfig:
    ref: str = ""
    """checkout of the Synaptic-Flow reference code (holds Pruners/pruners.py)"""
    models: list[str] = field(default_factory=lambda: list(DATASET))
    sparsity: float = 0.9
    """pruned fraction of the masked weights"""
    samples: int = 256
    """seeded training images scored by the data-based criteria"""
    batch_size: int = 64
    seed: int = 0
    """model initialisation and image choice"""
    data_dir: str | None = None
    """dataset folder; null = $FEDSPARSE_DATA"""


CHECKS = {
    "ref": allows("a folder holding Pruners/pruners.py")(
        lambda v, _: None if (Path(v) / "Pruners" / "pruners.py").is_file()
        else "a folder holding Pruners/pruners.py"),
    "models": allows(f"a non-empty list of: {', '.join(DATASET)}")(
        lambda v, _: None if v and set(v) <= set(DATASET) else f"a non-empty list of: {', '.join(DATASET)}"),
    "sparsity": _range(0, 1, hi_open=True),
    "samples": _range(1),
    "batch_size": _range(1),
    "seed": _range(0, 2**31 - 1),
}


def import_reference(ref: str) -> dict[str, ModuleType]:
    """The reference's modules, imported from the checkout `ref` (its top-level package names)."""
    sys.path.insert(0, str(Path(ref).resolve()))
    import prune
    from Layers import layers
    from Pruners import pruners
    from Utils import generator
    return {"layers": layers, "pruners": pruners, "generator": generator, "prune": prune}


def reference_twin(model: nn.Module, layers: ModuleType) -> nn.Module:
    """A copy of `model` with each nn.Conv2d / nn.Linear replaced by the reference's masked layer
    holding the same weights (masks all ones)."""
    twin = copy.deepcopy(model)
    for parent in list(twin.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.Conv2d:
                new = layers.Conv2d(child.in_channels, child.out_channels, child.kernel_size,
                                    child.stride, child.padding, child.dilation, child.groups,
                                    child.bias is not None, child.padding_mode)
            elif type(child) is nn.Linear:
                new = layers.Linear(child.in_features, child.out_features, child.bias is not None)
            else:
                continue
            new.load_state_dict(child.state_dict(), strict=False)  # weight_mask / bias_mask stay 1
            setattr(parent, name, new)
    return twin


def reference_mask(model: nn.Module, names: list[str], batches: list[tuple[Tensor, Tensor]],
                   ref: dict[str, ModuleType], pruner_name: str, attrs: dict[str, Any],
                   density: float, epochs: int) -> dict[str, Tensor]:
    """The reference's mask of `names` by `prune_loop` (global, exponential, eval mode)."""
    twin = reference_twin(model, ref["layers"])
    masked = list(ref["generator"].masked_parameters(twin))
    params = dict(twin.named_parameters())
    if [id(p) for _, p in masked] != [id(params[n]) for n in names]:
        raise AssertionError("the reference masks other weights than fedsparse")
    with torch.no_grad():
        x = batches[0][0]
        if not torch.allclose(twin.eval()(x), model.eval()(x), rtol=0, atol=1e-6):
            raise AssertionError("the reference-layer copy computes other outputs")
    pruner = getattr(ref["pruners"], pruner_name)(masked)
    for key, value in attrs.items():
        setattr(pruner, key, value)
    try:
        with contextlib.redirect_stderr(io.StringIO()):  # tqdm's bar
            ref["prune"].prune_loop(twin, nn.CrossEntropyLoss(), pruner, batches, torch.device("cpu"),
                                    density, "exponential", "global", epochs)
    except SystemExit:  # prune_loop quits when the kept count is off by >= 5
        raise AssertionError(f"reference prune_loop missed density {density} ({pruner_name})") from None
    return {n: m.detach().bool() for n, (m, _) in zip(names, masked)}


def check_model(name: str, cfg: CheckConfig, ref: dict[str, ModuleType]) -> list[tuple[Any, ...]]:
    """(model, case, kept_ref, kept_ours, overlap, seconds) for every case on model `name`."""
    data = load_dataset(DATASET[name], cfg.data_dir)
    rng = np.random.default_rng([cfg.seed, 7])
    idx = torch.from_numpy(rng.choice(len(data.train_y), size=min(cfg.samples, len(data.train_y)),
                                      replace=False))
    x, y = normalize(data.train_x[idx], data.mean, data.std), data.train_y[idx]
    batches = [(x[i:i + cfg.batch_size], y[i:i + cfg.batch_size]) for i in range(0, len(y), cfg.batch_size)]
    model = build_model(name, data.num_classes, data.in_channels, data.image_size[0], seed=cfg.seed).eval()
    names = prunable_names(model, keep_first_dense=False, keep_last_dense=False)
    density = 1.0 - cfg.sparsity
    rows = []
    for case, (criterion, options, pruner, attrs, epochs) in CASES.items():
        start = time.perf_counter()
        theirs = reference_mask(model, names, batches, ref, pruner, attrs, density, epochs)
        spec = MaskSpec(density, criterion, CRITERIA.options(criterion, options, CRITERION_OPTIONS_KEY),
                        scope="global")
        ours = build_initial_mask(model, names, spec, cfg.seed, tuple(x.shape[1:]), batches).mask
        kept_ref = sum(int(m.sum()) for m in theirs.values())
        kept_ours = sum(int(ours[n].sum()) for n in names)
        both = sum(int((theirs[n] & ours[n].cpu()).sum()) for n in names)
        rows.append((name, case, kept_ref, kept_ours, both / max(kept_ref, 1), time.perf_counter() - start))
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    usage.exit_if_help(args, "benchmarks.criteria_reference", "ref=PATH [key=value ...]",
                       lambda: [usage.Section("Settings (key=value)", CheckConfig(), CHECKS)])
    try:
        cfg = load_dataclass(CheckConfig, CHECKS, args)
        ref = import_reference(cfg.ref)
        torch.set_num_threads(1)
        print(f"sparsity {cfg.sparsity}, {cfg.samples} samples in batches of {cfg.batch_size}, seed {cfg.seed}")
        print(f"{'model':<12} {'criterion':<12} {'kept_ref':>9} {'kept_ours':>9} {'overlap':>8} {'s':>6}")
        for name in cfg.models:
            for row in check_model(name, cfg, ref):
                print("{:<12} {:<12} {:>9} {:>9} {:>8.4f} {:>6.1f}".format(*row), flush=True)
    except (ConfigError, DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
