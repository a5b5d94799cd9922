"""Central pre-training on training images that no client holds (pre-trained vs scratch,
arXiv 2112.08227).

The held-out set is every training image outside the client partitions of every (split, seed)
the bench grid uses, restricted to `classes` (e.g. digits 0-4: a related but different task, as
ImageNet is to CIFAR in the paper). The model starts from `build_model(..., seed)` and trains
dense with SGD; the state_dict is saved with `models.checkpoint.save_checkpoint` (read back with
`torch.load(weights_only=True)` through the run config key `init_checkpoint`), with a .json report
(image counts, overlap with client data = 0, test accuracy on all classes and on `classes`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fedsparse.config import Config
from fedsparse.data import normalize
from fedsparse.errors import ConfigError
from fedsparse.experiment import Experiment, build_experiment
from fedsparse.metrics.evaluate import evaluate
from fedsparse.models import build_model
from fedsparse.models.checkpoint import save_checkpoint
from fedsparse.train.local import LocalTrainer


@dataclass
class PretrainConfig:
    """How `init_checkpoint` files the bench finds missing are made."""

    classes: list[int] = field(default_factory=lambda: [0, 1, 2, 3, 4])  # empty = all classes
    epochs: int = 2
    lr: float = 0.01   # 0.05 with momentum 0.9 diverges on mnist_net
    momentum: float = 0.9
    weight_decay: float = 0.0005
    batch_size: int = 64
    max_images: int = 0   # 0 = every held-out image of `classes`
    seed: int = 0


def held_out(experiments: Sequence[Experiment]) -> np.ndarray:
    """Training indices in no client's partition of any of `experiments` (same dataset)."""
    n = len(experiments[0].data.train_y)
    used = np.zeros(n, dtype=bool)
    for exp in experiments:
        for part in exp.split.train:
            used[part] = True
    return np.flatnonzero(~used)


def pretrain(cfgs: Sequence[Config], settings: PretrainConfig, out: Path) -> dict[str, Any]:
    """Pre-train `cfgs[0].model.model` on the images held out from every config's split; save to `out`."""
    t0 = time.perf_counter()
    exps = [build_experiment(c) for c in cfgs]
    data = exps[0].data
    idx = held_out(exps)
    n_held = len(idx)
    if settings.classes:
        bad = [c for c in settings.classes if not 0 <= c < data.num_classes]
        if bad:
            raise ConfigError(f"pretrain.classes={settings.classes} is invalid: labels must be in "
                              f"[0, {data.num_classes - 1}]")
        idx = idx[np.isin(data.train_y.numpy()[idx], settings.classes)]
    rng = np.random.default_rng([settings.seed, 5])
    idx = rng.permutation(idx)
    if settings.max_images:
        idx = idx[: settings.max_images]
    if len(idx) == 0:
        raise ConfigError("pretraining: no training image is left outside the client partitions "
                          "(use a split that leaves images unused, e.g. pathological)")
    client = np.concatenate([p for e in exps for p in e.split.train])
    overlap = int(np.isin(idx, client).sum())
    x = normalize(data.train_x[torch.from_numpy(idx)], data.mean, data.std)
    y = data.train_y[torch.from_numpy(idx)]
    model = build_model(cfgs[0].model.model, data.num_classes, data.in_channels, data.image_size[0],
                        seed=settings.seed)
    trainer = LocalTrainer(model, None, lr=settings.lr, momentum=settings.momentum,
                           weight_decay=settings.weight_decay, batch_size=settings.batch_size)
    gen = torch.Generator().manual_seed(settings.seed)
    loss = trainer.train_epochs(x, y, settings.epochs, gen)
    test_x = normalize(data.test_x, data.mean, data.std)
    acc = evaluate(model, test_x, data.test_y, None)["central_accuracy"]
    on_classes = None
    if settings.classes:
        keep = torch.isin(data.test_y, torch.tensor(settings.classes))
        on_classes = evaluate(model, test_x[keep], data.test_y[keep], None)["central_accuracy"]
    save_checkpoint(model, out)
    report = {"settings": asdict(settings), "model": cfgs[0].model.model, "dataset": cfgs[0].data.dataset,
              "splits": sorted({f"{c.data.split}(seed={c.seed})" for c in cfgs}),
              "held_out_images": n_held, "pretrain_images": len(idx),
              "overlap_with_client_images": overlap, "final_train_loss": loss,
              "test_accuracy_all_classes": acc, "test_accuracy_pretrain_classes": on_classes,
              "seconds": round(time.perf_counter() - t0, 1)}
    out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    return report
