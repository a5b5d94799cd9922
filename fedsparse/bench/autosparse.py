"""AutoSparse (arXiv 2408.14757) for the `learned` criterion: survival labels by iterative rewind
pruning on one model, then a scorer trained to predict them from initial features.

1. Data: `train_subset` seeded training images of `dataset` (a small central proxy set).
2. Features at initialisation (`criteria.learned.initial_features`): per weight w, g = dL/dw summed
   over a pass of `grad_samples` of those images in batches of `batch_size`, and w * g, each
   RMS-normalised per tensor.
3. Labels: `fedsparse.sparse.lottery.iterative_magnitude_pruning` (train `imp_epochs` epochs,
   prune by magnitude to the next density of the geometric schedule down to `final_density` in
   `iterations` rounds under `scope`/`budget`, rewind to the initial weights); the per-weight
   survival count (0..iterations), min-max scaled to [0, 1].
4. Scorer: `criteria.learned.Scorer` (MLP `hidden`), MSE, Adam (`scorer_lr`), `scorer_epochs`
   epochs of minibatches of `scorer_batch` weights; a seeded `val_fraction` of the weights is held
   out and never trained on. Reports train/validation MSE, the validation MSE of predicting the
   training mean, and the validation Spearman rank correlation.
The scorer is saved as .npz (no pickle) with a .json report beside it.

    python -m simulations.train_scorer [out=runs/autosparse/scorer.npz] [key=value ...]
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fedsparse.bench.args import load_dataclass
from fedsparse import usage
from fedsparse.config import _choice, _literal, _range, allows
from fedsparse.data import load_dataset, normalize
from fedsparse.errors import ConfigError, DataError
from fedsparse.models import build_model, prunable_names
from fedsparse.sparse.criteria.learned import Scorer, initial_features, load_scorer
from fedsparse.sparse.lottery import iterative_magnitude_pruning
from fedsparse.sparse.mask import Mask
from fedsparse.train.local import LocalTrainer


@dataclass
class ScorerConfig:
    out: str = "runs/autosparse/scorer.npz"
    dataset: str = "mnist"
    data_dir: str | None = None
    model: str = "mlp"
    seed: int = 12345   # differs from the bench's run seeds: the labels are not for their weights
    train_subset: int = 5000
    batch_size: int = 64
    grad_samples: int = 1024
    iterations: int = 5
    final_density: float = 0.02
    imp_epochs: int = 2
    lr: float = 0.05
    momentum: float = 0.9
    scope: str = "layer"
    budget: str = "erk"
    hidden: list[int] = field(default_factory=lambda: [32, 32])
    scorer_epochs: int = 20
    scorer_batch: int = 4096
    scorer_lr: float = 0.001
    val_fraction: float = 0.2
    evaluate: str | None = None   # a saved scorer: report its fit to this model's labels, train none


CHECKS = {
    "dataset": _choice("dataset"),
    "model": _choice("model"),
    "seed": _range(0, 2**31 - 1),
    "train_subset": _range(1),
    "batch_size": _range(1, 1_000_000),
    "grad_samples": _range(1),
    "iterations": _range(1, 100),
    "final_density": _range(0, 1, lo_open=True),
    "imp_epochs": _range(1, 10_000),
    "lr": _range(0, lo_open=True),
    "momentum": _range(0, 1, hi_open=True),
    "scope": _literal("layer", "global"),
    "budget": _choice("budget"),
    "hidden": allows("a non-empty list of widths in [1, 4096]")(
        lambda v, _: None if v and all(1 <= h <= 4096 for h in v) else "a non-empty list of widths in [1, 4096]"),
    "scorer_epochs": _range(1, 100_000),
    "scorer_batch": _range(1),
    "scorer_lr": _range(0, lo_open=True),
    "val_fraction": _range(0, 1, lo_open=True, hi_open=True),
    "evaluate": allows("null or a scorer file")(
        lambda v, _: None if v is None or Path(v).is_file() else "null or a scorer file (not found)"),
}


def _generator(seed: int, stream: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(np.random.SeedSequence([seed, stream]).generate_state(1)[0]))


def survival_labels(model: torch.nn.Module, names: list[str], x: torch.Tensor, y: torch.Tensor,
                    cfg: ScorerConfig) -> tuple[dict[str, torch.Tensor], Mask]:
    """IMP with rewind on (x, y); per-weight survival counts and the final mask. `model` ends
    rewound to its initial weights under that mask."""
    gen = _generator(cfg.seed, 1)

    def train_fn(net: torch.nn.Module, mask: Mask) -> None:
        trainer = LocalTrainer(net, mask, lr=cfg.lr, momentum=cfg.momentum, weight_decay=0.0,
                               batch_size=cfg.batch_size)
        trainer.train_epochs(x, y, cfg.imp_epochs, gen)

    mask, survival = iterative_magnitude_pruning(model, names, train_fn, cfg.final_density,
                                                 cfg.iterations, scope=cfg.scope, budget=cfg.budget)
    return survival, mask


def min_max(survival: dict[str, torch.Tensor]) -> torch.Tensor:
    """All survival counts (flat, in name order) min-max scaled to [0, 1]."""
    flat = torch.cat([s.reshape(-1).float() for s in survival.values()])
    lo, hi = float(flat.min()), float(flat.max())
    return (flat - lo) / (hi - lo) if hi > lo else torch.zeros_like(flat)


def spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    """Spearman rank correlation (average ranks for ties)."""
    def ranks(v: torch.Tensor) -> np.ndarray:
        order = np.argsort(v.numpy(), kind="stable")
        r = np.empty(len(v))
        r[order] = np.arange(len(v))
        vals = v.numpy()[order]
        _, start, counts = np.unique(vals, return_index=True, return_counts=True)
        for s, c in zip(start, counts):
            if c > 1:
                r[order[s:s + c]] = s + (c - 1) / 2
        return r
    ra, rb = ranks(a), ranks(b)
    return float(np.corrcoef(ra, rb)[0, 1])


def fit_scorer(features: torch.Tensor, labels: torch.Tensor, cfg: ScorerConfig
               ) -> tuple[Scorer, dict[str, Any]]:
    """Train a `Scorer` on a seeded train part of (features, labels); metrics on the held-out part."""
    n = len(labels)
    perm = torch.randperm(n, generator=_generator(cfg.seed, 2))
    n_val = max(1, round(cfg.val_fraction * n))
    val, train = perm[:n_val], perm[n_val:]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        scorer = Scorer(tuple(cfg.hidden))
    opt = torch.optim.Adam(scorer.parameters(), lr=cfg.scorer_lr)
    gen = _generator(cfg.seed, 4)
    history = []
    for _ in range(cfg.scorer_epochs):
        order = train[torch.randperm(len(train), generator=gen)]
        total = 0.0
        for start in range(0, len(order), cfg.scorer_batch):
            idx = order[start:start + cfg.scorer_batch]
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(scorer(features[idx]), labels[idx])
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        history.append(total / len(train))
    scorer.eval()
    with torch.no_grad():
        pred_val = scorer(features[val])
        pred_train = scorer(features[train])
    mean = float(labels[train].mean())
    metrics = {
        "weights": n, "train_weights": len(train), "val_weights": n_val,
        "train_mse": float(torch.mean((pred_train - labels[train]) ** 2)),
        "val_mse": float(torch.mean((pred_val - labels[val]) ** 2)),
        "val_mse_predict_mean": float(torch.mean((mean - labels[val]) ** 2)),
        "val_spearman": spearman(pred_val, labels[val]),
        "val_spearman_abs_w": spearman(features[val, 0].abs(), labels[val]),
        "val_spearman_abs_wg": spearman(features[val, 2].abs(), labels[val]),
        "train_mse_per_epoch": history,
    }
    return scorer, metrics


def make_scorer(cfg: ScorerConfig) -> dict[str, Any]:
    """Steps 1-4 of the module docstring; writes `cfg.out` and `<out>.json`; returns the report."""
    t0 = time.perf_counter()
    data = load_dataset(cfg.dataset, cfg.data_dir)
    n = len(data.train_y)
    if cfg.train_subset > n:
        raise ConfigError(f"train_subset={cfg.train_subset} is invalid: must be in [1, {n}]")
    idx = torch.randperm(n, generator=_generator(cfg.seed, 0))[: cfg.train_subset]
    x = normalize(data.train_x[idx], data.mean, data.std)
    y = data.train_y[idx]
    model = build_model(cfg.model, data.num_classes, data.in_channels, data.image_size[0],
                        seed=cfg.seed)
    names = prunable_names(model)
    g = min(cfg.grad_samples, len(y))
    batches = [(x[i:min(i + cfg.batch_size, g)], y[i:min(i + cfg.batch_size, g)])
               for i in range(0, g, cfg.batch_size)]
    feats = initial_features(model, names, batches)
    features = torch.cat([feats[n] for n in names])
    t_imp = time.perf_counter()
    survival, mask = survival_labels(model, names, x, y, cfg)
    imp_s = time.perf_counter() - t_imp
    labels = min_max({n: survival[n] for n in names})
    if not torch.isfinite(features).all():
        raise DataError("non-finite initial features (gradient overflow?)")
    if cfg.evaluate is not None:
        return evaluate_scorer(cfg, features, labels, names, survival, imp_s, t0)
    scorer, metrics = fit_scorer(features, labels, cfg)
    out = Path(cfg.out)
    scorer.save(out, val_mse=metrics["val_mse"], train_mse=metrics["train_mse"],
                val_spearman=metrics["val_spearman"])
    report = {"config": asdict(cfg), **metrics, "imp_seconds": round(imp_s, 1),
              "final_mask_density": mask.density(),
              "label_histogram": np.bincount(torch.cat([survival[n].reshape(-1) for n in names])
                                             .numpy(), minlength=cfg.iterations + 1).tolist(),
              "seconds": round(time.perf_counter() - t0, 1)}
    out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def evaluate_scorer(cfg: ScorerConfig, features: torch.Tensor, labels: torch.Tensor,
                    names: list[str], survival: dict[str, torch.Tensor], imp_s: float,
                    t0: float) -> dict[str, Any]:
    """A saved scorer against this model's labels (every weight is unseen: a transfer test);
    the report goes to `<out>.json`."""
    scorer = load_scorer(cfg.evaluate)
    with torch.no_grad():
        pred = scorer(features)
    sizes = [survival[n].numel() for n in names]
    per_layer = {}
    for n, p, l, f in zip(names, pred.split(sizes), labels.split(sizes), features.split(sizes)):
        per_layer[n] = {"weights": len(l), "spearman": spearman(p, l),
                        "spearman_abs_w": spearman(f[:, 0].abs(), l),
                        "spearman_abs_wg": spearman(f[:, 2].abs(), l)}
    report = {"config": asdict(cfg), "weights": len(labels),
              "mse": float(torch.mean((pred - labels) ** 2)),
              "mse_predict_mean": float(torch.mean((labels.mean() - labels) ** 2)),
              "spearman": spearman(pred, labels),
              "spearman_abs_w": spearman(features[:, 0].abs(), labels),
              "spearman_abs_wg": spearman(features[:, 2].abs(), labels),
              "per_layer": per_layer, "imp_seconds": round(imp_s, 1),
              "seconds": round(time.perf_counter() - t0, 1)}
    out = Path(cfg.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def main(argv: Sequence[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    usage.exit_if_help(args, "simulations.train_scorer", "[out=PATH] [key=value ...]",
                       lambda: [usage.Section("Settings (key=value)", ScorerConfig(), CHECKS)],
                       "Details: docs/pruning-bench.md.")
    try:
        cfg = load_dataclass(ScorerConfig, CHECKS, args)
        report = make_scorer(cfg)
    except (ConfigError, DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if cfg.evaluate is not None:
        print(json.dumps({k: v for k, v in report.items() if k != "config"}, indent=2))
        print(f"report written to {Path(cfg.out).with_suffix('.json')}")
        return 0
    keep = ("weights", "val_weights", "train_mse", "val_mse", "val_mse_predict_mean",
            "val_spearman", "val_spearman_abs_w", "val_spearman_abs_wg", "imp_seconds", "seconds")
    print(json.dumps({k: report[k] for k in keep}, indent=2))
    print(f"scorer written to {cfg.out} (report {Path(cfg.out).with_suffix('.json')})")
    return 0 if math.isfinite(report["val_mse"]) else 1
