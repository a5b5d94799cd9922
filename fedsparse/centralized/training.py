"""`CentralTraining`: one centralized run, built from a config and a dataset, trained epoch by epoch."""

from __future__ import annotations

import math
import time
from typing import Any

from fedsparse.centralized.config import CentralConfig
from fedsparse.centralized.data import METHOD_STREAM, ORDER_STREAM, central_data, generator
from fedsparse.centralized.registry import CENTRAL_METHODS, Setup
from fedsparse.data import ImageData
from fedsparse.metrics.evaluate import evaluate
from fedsparse.metrics.run_folder import RunFolder
from fedsparse.models import build_model, prunable_names
from fedsparse.sparse.mask import Mask
from fedsparse.sparse.schedules import DROP_SCHEDULES
from fedsparse.train.local import LocalTrainer


class CentralTraining:
    """Data, seeded model, the method's starting mask and the trainer, ready for `train`.

    Building does all the checking (data subset, model vs. dataset, mask selection), so bad input
    fails before any run folder is written.
    """

    def __init__(self, cfg: CentralConfig, data: ImageData) -> None:
        t0 = time.perf_counter()
        self.cfg = cfg
        self.data = central_data(cfg, data)
        self.model = build_model(cfg.model, data.num_classes, data.in_channels, data.image_size[0],
                                 seed=cfg.seed)
        self.names = prunable_names(self.model, cfg.keep_first_dense, cfg.keep_last_dense)
        steps_per_epoch = math.ceil(len(self.data.train_y) / cfg.batch_size)
        setup = Setup(cfg, self.model, self.names, self.data.score_batches,
                      (data.in_channels, *data.image_size), cfg.epochs * steps_per_epoch,
                      generator(cfg.seed, METHOD_STREAM))
        self.method = CENTRAL_METHODS.get(cfg.method)(setup)
        initial = self.method.initial_mask()
        self.dense = initial is None
        self.trainer = LocalTrainer(self.model, initial, lr=cfg.lr, momentum=cfg.momentum,
                                    weight_decay=cfg.weight_decay, batch_size=cfg.batch_size,
                                    augment=cfg.augment)
        self.order = generator(cfg.seed, ORDER_STREAM)
        self.total_steps = setup.total_steps
        self.step = 0
        self.setup_s = time.perf_counter() - t0

    @property
    def mask(self) -> Mask:
        """The current mask of the prunable weights (all ones when training dense)."""
        if self.dense:
            return Mask.ones(self.model, self.names)
        return self.trainer.optimizer.mask

    def before_step(self) -> None:
        """The `LocalTrainer` hook: the method's mask update, then this step's learning rate."""
        self.method.update(self.trainer, self.step)
        lr = DROP_SCHEDULES.get(self.cfg.lr_schedule)(self.step, self.total_steps, self.cfg.lr)
        for group in self.trainer.optimizer.param_groups:
            group["lr"] = lr
        self.step += 1

    def train_epoch(self, epoch: int, t_start: float) -> dict[str, Any]:
        """One pass over the training set, then a test-set evaluation; the metrics row."""
        t0 = time.perf_counter()
        before = self.mask
        loss = self.trainer.train_epochs(self.data.train_x, self.data.train_y, 1, self.order,
                                         before_step=self.before_step)
        mask = self.mask
        row: dict[str, Any] = {"round": epoch, "train_loss": loss}
        row |= evaluate(self.model, self.data.test_x, self.data.test_y, None)
        row |= {"density": mask.density(), "layer_density": mask.layer_densities(),
                "mask_changes": mask.changed(before),
                "round_time_s": time.perf_counter() - t0,
                "wall_time_s": time.perf_counter() - t_start}
        return row

    def train(self, run: RunFolder | None = None) -> list[dict[str, Any]]:
        """All epochs; each row is printed and, with `run`, appended to its metrics.jsonl."""
        t_start = time.perf_counter() - self.setup_s
        rows = []
        for epoch in range(1, self.cfg.epochs + 1):
            row = self.train_epoch(epoch, t_start)
            print(f"epoch {epoch}/{self.cfg.epochs} test_acc={row['central_accuracy']:.4f} "
                  f"test_loss={row['central_loss']:.4f} density={row['density']:.4f} "
                  f"train_loss={row['train_loss']:.4f} {row['round_time_s']:.1f}s", flush=True)
            if run is not None:
                run.append_metrics(row)
            rows.append(row)
        return rows
