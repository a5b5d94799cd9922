"""Settings the model or the initial mask cannot meet (fedsparse/preflight.py) fail as the config is
loaded: before any data is read or Ray starts, with one line naming the setting, and no run folder."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fedsparse.centralized.config import load_central_config
from fedsparse.config import load_config
from fedsparse.data import DATASETS, load_dataset
from fedsparse.errors import ConfigError
from fedsparse.models import prunable_names
from fedsparse.preflight import model_on_meta
from fedsparse.sparse.budgets import BUDGETS, layer_budget

ROOT = Path(__file__).resolve().parent.parent
MNIST = ["dataset=mnist", "model=mnist_net", "num_clients=10", "clients_per_round=3"]


def test_an_impossible_sparsity_fails_at_once_naming_it_and_leaves_no_run_folder(tmp_path: Path) -> None:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "simulations.cifar_noniid", *MNIST, "sparsity=0.999999",
                           f"output_dir={tmp_path / 'runs'}"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stdout == "" and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("error: sparsity=0.999999 is invalid: must be at most 0.999984 "
                                  "for model='mnist_net'"), proc.stderr
    assert not (tmp_path / "runs").exists()
    # Its own work is imports and a model built on the meta device (no data, no Ray): a few CPU
    # seconds. Wall time is bounded loosely, since other jobs may share the machine's cores.
    assert cpu < 10, (cpu, wall)
    assert wall < 60, (cpu, wall)


@pytest.mark.parametrize("model,dataset", [("mnist_net", "mnist"), ("cifar10_net", "cifar10"),
                                           ("mlp", "mnist"), ("resnet18", "cifar100")])
def test_the_limit_named_is_the_largest_feasible_sparsity(model: str, dataset: str) -> None:
    meta = model_on_meta(model, dataset)
    names = prunable_names(meta)
    shapes = {n: p.shape for n, p in meta.named_parameters() if n in names}
    for budget in BUDGETS.names():
        with pytest.raises(ConfigError) as info:
            load_config("cifar_noniid", [f"model={model}", f"dataset={dataset}", f"budget={budget}",
                                         "sparsity=0.9999999"])
        message = str(info.value)
        assert message.startswith("sparsity=0.9999999 is invalid: must be at most "), message
        limit = float(message.split("at most ")[1].split()[0])
        kept = layer_budget(budget, shapes, 1.0 - limit)  # feasible, one weight or more per layer
        assert min(kept.values()) >= 1 and sum(kept.values()) >= len(shapes)
        with pytest.raises(ConfigError):
            layer_budget(budget, shapes, 1.0 - (limit + 2e-6))


def test_other_settings_the_model_cannot_meet_are_named() -> None:
    cases = [(["model=mnist_net"], "model='mnist_net' is invalid for dataset='cifar10'"),
             ([*MNIST, "strategy=fixed_mask", "sparsity=0.99999"], "sparsity=0.99999 is invalid")]
    for argv, start in cases:
        with pytest.raises(ConfigError) as info:
            load_config("cifar_noniid", argv)
        assert str(info.value).startswith(start), str(info.value)
    load_config("cifar_noniid", [*MNIST, "strategy=fedavg", "sparsity=0.99999"])  # dense: no mask
    with pytest.raises(ConfigError, match=r"^sparsity=0\.99999 is invalid"):
        load_central_config(["sparsity=0.99999"])
    load_central_config(["sparsity=0.99999", "method=dense"])


@pytest.mark.skipif(not os.environ.get("FEDSPARSE_DATA"), reason="needs FEDSPARSE_DATA (real data)")
def test_registered_dataset_shapes_are_what_loads() -> None:
    for name in ("mnist", "cifar10"):
        data = load_dataset(name, download=False)
        source = DATASETS.get(name)
        assert (len(data.classes), tuple(data.train_x.shape[1:])) == (source.num_classes, source.image_shape)
