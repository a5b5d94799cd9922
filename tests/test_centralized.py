"""Centralized sparse training: every method on a tiny synthetic set (realised density, exact zeros,
reproducibility, mask updates), config errors, and the CLI on real MNIST."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from fedsparse.centralized import CENTRAL_METHODS, CentralConfig, CentralTraining, load_central_config
from fedsparse.centralized.cli import main
from fedsparse.centralized.data import central_data
from fedsparse.data import ImageData
from fedsparse.errors import ConfigError
from fedsparse.sparse.budgets import layer_budget

torch.set_num_threads(1)

REPO = Path(__file__).resolve().parent.parent
TIMES = ("round_time_s", "wall_time_s")
SPARSE = [("fixed", "random"), ("fixed", "magnitude"), ("fixed", "snip"), ("fixed", "grasp"),
          ("fixed", "synflow"), ("fixed", "gradient"), ("rigl", "random"), ("set", "random"),
          ("gradual", "random")]


def _data(n_train: int = 96, n_test: int = 40) -> ImageData:
    """MNIST-shaped random images whose label is readable from the mean brightness of a band."""
    gen = torch.Generator().manual_seed(0)

    def split(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.randint(0, 256, (n, 1, 28, 28), generator=gen, dtype=torch.uint8)
        y = torch.randint(0, 10, (n,), generator=gen)
        x[:, :, :3] = (y * 25).to(torch.uint8).view(n, 1, 1, 1)
        return x, y

    (tx, ty), (vx, vy) = split(n_train), split(n_test)
    return ImageData("synthetic", [str(i) for i in range(10)], tx, ty, vx, vy)


def _cfg(**kw: object) -> CentralConfig:
    base = dict(epochs=1, batch_size=16, lr=0.02, readjust_steps=2, score_samples=32)
    return replace(CentralConfig(), **(base | kw))


def _trained(cfg: CentralConfig) -> tuple[CentralTraining, list[dict]]:
    training = CentralTraining(cfg, _data())
    return training, training.train()


def _check_sparse(training: CentralTraining, cfg: CentralConfig) -> None:
    mask = training.mask
    params = dict(training.model.named_parameters())
    shapes = {n: params[n].shape for n in training.names}
    target = layer_budget(cfg.budget, shapes, cfg.density)
    for name in training.names:
        kept = int(mask[name].sum())
        assert abs(kept - target[name]) <= 1, (name, kept, target[name])
        assert torch.all(params[name].detach()[~mask[name]] == 0.0), name
    total = sum(p.numel() for p in (params[n] for n in training.names))
    assert abs(mask.num_active() - cfg.density * total) <= len(training.names)


def test_registry() -> None:
    assert CENTRAL_METHODS.names() == ["dense", "fixed", "gradual", "rigl", "set"]


def test_dense_trains_every_weight() -> None:
    training, rows = _trained(_cfg(method="dense"))
    assert len(rows) == 1 and rows[0]["round"] == 1 and rows[0]["density"] == 1.0
    assert all(torch.all(p != 0) for n, p in training.model.named_parameters() if n in training.names)
    assert 0.0 <= rows[0]["central_accuracy"] <= 1.0 and rows[0]["train_loss"] > 0


@pytest.mark.parametrize(("method", "criterion"), SPARSE)
def test_sparse_methods_realise_target_density(method: str, criterion: str) -> None:
    cfg = _cfg(method=method, criterion=criterion, sparsity=0.9)
    training, rows = _trained(cfg)
    _check_sparse(training, cfg)
    assert rows[0]["density"] == pytest.approx(0.1, abs=1e-4)
    assert rows[0]["layer_density"] == training.mask.layer_densities()
    assert set(rows[0]) >= {"round", "central_accuracy", "central_loss", "density", "layer_density",
                            "train_loss", "mask_changes", *TIMES}
    changed = rows[0]["mask_changes"]
    assert (changed > 0) if method in ("rigl", "set", "gradual") else changed == 0


@pytest.mark.parametrize("budget", ["uniform", "er"])
def test_other_budgets(budget: str) -> None:
    cfg = _cfg(method="rigl", budget=budget, sparsity=0.8)
    training, _ = _trained(cfg)
    _check_sparse(training, cfg)


@pytest.mark.parametrize("criterion", ["snip", "synflow", "random"])
def test_fixed_global_scope_hits_total_density(criterion: str) -> None:
    cfg = _cfg(method="fixed", criterion=criterion, scope="global", sparsity=0.9)
    training, _ = _trained(cfg)
    params = dict(training.model.named_parameters())
    total = sum(params[n].numel() for n in training.names)
    assert training.mask.num_active() == round(0.1 * total)
    assert all(int(m.sum()) >= 1 for m in training.mask.values())
    assert all(torch.all(params[n].detach()[~m] == 0.0) for n, m in training.mask.items())
    budget = CentralTraining(replace(cfg, scope="layer"), _data()).mask
    assert training.mask.layer_densities() != budget.layer_densities()


def test_gradual_starts_dense_and_prunes_on_schedule() -> None:
    cfg = _cfg(method="gradual", sparsity=0.9, epochs=2)
    training = CentralTraining(cfg, _data())
    assert training.mask.density() == 1.0
    rows = training.train()
    assert 0.1 < rows[0]["density"] < 1.0  # 6 steps per epoch, target reached at step 9 of 12
    assert rows[1]["density"] == pytest.approx(0.1, abs=1e-4)
    _check_sparse(training, cfg)


def test_rigl_grows_by_gradient_and_prunes_by_magnitude() -> None:
    cfg = _cfg(method="rigl", alpha=0.5, readjust_steps=1)
    training = CentralTraining(cfg, _data())
    params = dict(training.model.named_parameters())
    gen = torch.Generator().manual_seed(3)
    for p in params.values():
        p.grad = torch.randn(p.shape, generator=gen)
    old = training.mask
    before = {n: params[n].detach().abs().clone() for n in training.names}
    training.method.update(training.trainer, 1)  # 1 % readjust_steps == 0, before end_step
    new = training.mask
    assert new.changed(old) > 0
    for n in training.names:
        w, grad = params[n].detach(), params[n].grad.abs()
        assert int(new[n].sum()) == int(old[n].sum())
        survived = old[n] & new[n] & (w != 0)
        dropped = old[n] & ~survived  # includes weights dropped and grown back, now zero
        fresh = new[n] & ~survived
        assert torch.all(w[fresh] == 0.0) and torch.all(w[~new[n]] == 0.0)
        if dropped.any():
            assert before[n][dropped].max() <= before[n][survived].min()
        if fresh.any():
            assert grad[fresh].min() >= grad[~new[n]].max()


def test_lr_schedule_per_step() -> None:
    training = CentralTraining(_cfg(method="set", lr=0.05), _data())
    training.train()  # 6 steps: the last one (step 5) uses lr / 2 * (1 + cos(5 pi / 6))
    assert training.step == 6
    lr = training.trainer.optimizer.param_groups[0]["lr"]
    assert lr == pytest.approx(0.05 / 2 * (1 + math.cos(5 * math.pi / 6)))


def test_same_seed_same_metrics_and_weights() -> None:
    def strip(rows: list[dict]) -> list[dict]:
        return [{k: v for k, v in r.items() if k not in TIMES} for r in rows]

    for method in ("rigl", "set", "fixed"):
        a, rows_a = _trained(_cfg(method=method, criterion="snip", seed=5))
        b, rows_b = _trained(_cfg(method=method, criterion="snip", seed=5))
        assert strip(rows_a) == strip(rows_b)
        assert a.mask == b.mask
        assert all(torch.equal(p, q) for p, q in zip(a.model.parameters(), b.model.parameters()))
        c, _ = _trained(_cfg(method=method, criterion="snip", seed=6))
        assert c.mask != a.mask


def test_train_subset_is_seeded() -> None:
    data = _data()
    a, b = central_data(_cfg(train_subset=50), data), central_data(_cfg(train_subset=50), data)
    assert len(a.train_y) == 50 and torch.equal(a.train_x, b.train_x)
    assert not torch.equal(a.train_x, central_data(_cfg(train_subset=50, seed=1), data).train_x)
    assert sum(len(y) for _, y in a.score_batches) == 32
    with pytest.raises(ConfigError, match="train_subset"):
        CentralTraining(_cfg(train_subset=97), data)


@pytest.mark.parametrize(("arg", "field"), [
    ("method=prune_everything", "method"), ("sparsity=1.0", "sparsity"), ("epochs=0", "epochs"),
    ("epochs=three", "epochs"), ("criterion=oracle", "criterion"), ("budget=flat", "budget"),
    ("readjust_until=0", "readjust_until"), ("alpha_schedule=step", "alpha_schedule"),
    ("train_subset=-1", "train_subset"), ("scope=local", "scope"), ("no_such_key=1", "no_such_key"),
])
def test_bad_config_names_the_field(arg: str, field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        load_central_config([arg])


def test_config_defaults_and_overrides() -> None:
    cfg = load_central_config(["method=set", "lr=0.1"])
    assert (cfg.dataset, cfg.model, cfg.method, cfg.sparsity, cfg.epochs, cfg.lr) == (
        "mnist", "mnist_net", "set", 0.9, 3, 0.1)
    assert load_central_config([]) == CentralConfig()


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "simulations.centralized_sparse", *args],
                          cwd=REPO, capture_output=True, text=True, timeout=300,
                          env=os.environ | {"OMP_NUM_THREADS": "1"} | env)


def test_cli_bad_key_exits_2_without_traceback() -> None:
    proc = _cli("no_such_key=1")
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and "no_such_key" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_main_bad_value_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["method=magic"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: method='magic' is invalid") and "rigl" in err


@pytest.mark.skipif(not os.environ.get("FEDSPARSE_DATA"), reason="FEDSPARSE_DATA is not set")
def test_cli_real_mnist(tmp_path: Path) -> None:
    proc = _cli("method=rigl", "train_subset=512", "epochs=1", "readjust_steps=2",
                f"output_dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr
    (run,) = tmp_path.iterdir()
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 1 and rows[0]["round"] == 1
    assert rows[0]["density"] == pytest.approx(0.1, abs=1e-4)
    assert 0.0 <= rows[0]["central_accuracy"] <= 1.0
    assert load_central_config([f"config={run / 'config.yaml'}"]).train_subset == 512
    summary = json.loads((run / "summary.json").read_text())
    assert summary["method"] == "rigl" and summary["rounds"] == 1
    assert (run / "accuracy_vs_round.png").is_file()
    assert "epoch 1/1 test_acc=" in proc.stdout
