"""Clients on GPUs: `client_device` / `client_gpus` validation, the number of client actors derived
from CPUs and GPUs, the CPU actors' environment, and masked local training on each device (the
cuda cases run where torch sees a GPU, and are skipped elsewhere)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fedsparse.config import Config, load_config
from fedsparse.data import ImageData, make_split
from fedsparse.errors import ConfigError
from fedsparse.experiment import Experiment
from fedsparse.runner import backend_config, num_actors, worker_env
from fedsparse.sparse.mask import Mask
from fedsparse.train.client_update import ClientResult, client_update

ROOT = Path(__file__).resolve().parent.parent
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA device"))]


@pytest.mark.parametrize(("args", "message"), [
    (["client_device=cuda"], r"client_gpus=0.0 is invalid: must be in \(0, 1\] with client_device='cuda'"),
    (["client_device=cuda", "client_gpus=1.5"], r"client_gpus=1.5 is invalid: must be in \(0, 1\]"),
    (["client_gpus=0.5"], r"client_gpus=0.5 is invalid: must be 0.0 with client_device='cpu'"),
    (["client_device=tpu"], r"client_device='tpu' is invalid: must be one of: cpu, cuda"),
])
def test_bad_client_device_settings_name_the_key(args: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config("cifar_noniid", args)


def test_actor_count_follows_cpus_and_gpus() -> None:
    def cfg(*args: str) -> Config:
        return load_config("cifar_noniid", list(args))

    cuda = ("client_device=cuda", "client_gpus=0.25")
    assert num_actors(cfg(*cuda, "num_actors=16"), gpus=1) == 4  # 4 quarter-GPU actors
    assert num_actors(cfg(*cuda, "num_actors=3"), gpus=1) == 3  # fewer CPUs than GPU shares
    assert num_actors(cfg("client_device=cuda", "client_gpus=0.3", "num_actors=64"), gpus=2) == 6
    assert num_actors(cfg("client_device=cuda", "client_gpus=1", "num_actors=8"), gpus=2) == 2
    assert num_actors(cfg(*cuda), gpus=8) == min(os.cpu_count() or 1, 32)  # null: one per core
    assert num_actors(cfg("num_actors=5"), gpus=2) == 5  # CPU clients ignore GPUs
    local = backend_config(cfg(*cuda, "num_actors=16"), gpus=2)
    assert local["client_resources"] == {"num_cpus": 1, "num_gpus": 0.25}
    assert (local["init_args"]["num_cpus"], local["init_args"]["num_gpus"]) == (8, 2)
    assert backend_config(cfg("num_actors=3"))["init_args"]["num_gpus"] == 0
    joined = backend_config(cfg(*cuda, "ray_address=10.0.0.5:6379"))
    assert joined == {"client_resources": {"num_cpus": 1, "num_gpus": 0.25},
                      "init_args": {"address": "10.0.0.5:6379"}}  # the cluster's GPUs decide


def test_cpu_client_actors_see_no_gpu() -> None:
    assert worker_env(load_config("cifar_noniid", []))["CUDA_VISIBLE_DEVICES"] == ""
    # cuda actors: Ray sets CUDA_VISIBLE_DEVICES to the GPU each one holds
    assert "CUDA_VISIBLE_DEVICES" not in worker_env(
        load_config("cifar_noniid", ["client_device=cuda", "client_gpus=0.5"]))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a machine without a GPU")
def test_cuda_clients_without_a_gpu_stop_before_any_work(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "simulations.cifar_noniid", "client_device=cuda",
                           "client_gpus=0.5", f"output_dir={tmp_path}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: client_device='cuda' is invalid: no CUDA device")
    assert not list(tmp_path.iterdir())  # no run folder


def _experiment(**overrides: object) -> Experiment:
    """A 4-client MLP run on synthetic 8x8 images with a learnable signal (no real data)."""
    g = torch.Generator().manual_seed(0)
    y = torch.arange(240) % 10
    x = torch.randint(0, 256, (240, 1, 8, 8), generator=g, dtype=torch.uint8)
    x[:, 0, 0, :] = (y * 25).to(torch.uint8)[:, None]
    data = ImageData("synthetic", [str(c) for c in range(10)], x, y, x[:100].clone(), y[:100].clone())
    cfg = Config().with_(**{"dataset": "mnist", "model": "mlp", "num_clients": 4, "clients_per_round": 2,
                    "split": "iid", "local_epochs": 3, "batch_size": 16, "lr": 0.05,
                    "augment": True, **overrides})
    return Experiment(cfg, data, make_split("iid", y.numpy(), y[:100].numpy(), 4, 0))


def _train(exp: Experiment, device: str, readjust: bool) -> tuple[torch.nn.Module, Mask, ClientResult]:
    """One client's round on `device` from the seeded model under a random 80%-sparse mask."""
    model = exp.new_model()
    g = torch.Generator().manual_seed(1)
    params = dict(model.named_parameters())
    mask = Mask({n: torch.rand(params[n].shape, generator=g) < 0.2 for n in exp.masked_names})
    mask.apply(model)
    model.to(device)
    result = client_update(exp, model, mask, 0, 1, proximal_mu=0.01, readjust=readjust,
                           drop_fraction=0.3)
    return model, mask, result


@pytest.mark.parametrize("device", DEVICES)
def test_masked_training_keeps_pruned_weights_exactly_zero(device: str) -> None:
    exp = _experiment()
    model, mask, result = _train(exp, device, readjust=False)
    params = dict(model.named_parameters())
    start = dict(exp.new_model().named_parameters())
    assert all(p.device.type == device for p in params.values())
    for n, m in mask.items():
        w = params[n].detach()
        assert torch.count_nonzero(w[~m.to(device)]) == 0  # exactly zero off the mask
        assert not torch.equal(w[m.to(device)].cpu(), start[n].detach()[m])  # trained on it
    assert result.mask is mask and result.mask_changes == 0
    if device != "cpu":  # the same data, order and augmentation as on the CPU
        cpu_model, _, cpu_result = _train(exp, "cpu", readjust=False)
        assert result.train_loss == pytest.approx(cpu_result.train_loss, rel=1e-4)
        for n, p in cpu_model.named_parameters():
            torch.testing.assert_close(params[n].detach().cpu(), p.detach(), rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("regrow_from", ["inactive", "all"])
@pytest.mark.parametrize("device", DEVICES)
def test_readjustment_on_the_device_keeps_the_mask_exact(device: str, regrow_from: str) -> None:
    exp = _experiment(regrow_from=regrow_from)
    model, mask, result = _train(exp, device, readjust=True)
    params = dict(model.named_parameters())
    new = result.mask
    assert new is not None and result.mask_changes > 0
    for n, m in new.items():
        assert m.device.type == "cpu"  # the mask stays where the ClientApp keeps it
        assert torch.count_nonzero(params[n].detach()[~m.to(device)]) == 0
        if regrow_from == "inactive":  # readjustment keeps each layer's count
            assert int(m.sum()) == int(mask[n].sum())
