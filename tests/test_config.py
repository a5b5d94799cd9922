"""Config loading and validation: every bad input fails early, naming the field."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from fedsparse.bench.config import load_bench_config
from fedsparse.centralized.config import load_central_config
from fedsparse.config import Config, config_from_yaml, load_config
from fedsparse.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent

BAD = [
    (["rounds=0"], "rounds"),
    (["rounds=ten"], "rounds"),
    (["sparsity=1.0"], "sparsity"),
    (["sparsity=-0.1"], "sparsity"),
    (["lr=0"], "lr"),
    (["momentum=1.5"], "momentum"),
    (["dataset=imagenet"], "dataset"),
    (["split=banana"], "split"),
    (["model=gpt"], "model"),
    (["strategy=fedfoo"], "strategy"),
    (["budget=whatever"], "budget"),
    (["criterion=oracle"], "criterion"),
    (["codec=zip"], "codec"),
    (["value_dtype=int8"], "value_dtype"),
    (["alpha_schedule=step"], "alpha_schedule"),
    (["clients_per_round=500"], "clients_per_round"),
    (["dirichlet_alpha=0"], "dirichlet_alpha"),
    (["num_clients=0"], "num_clients"),
    (["unknown_key=1"], "unknown_key"),
    (["data_dir=/no/such/folder"], "data_dir"),
    (["regrow_train_epochs=50"], "regrow_train_epochs"),
    (["readjust_until=1000"], "readjust_until"),
    (["server_device=tpu"], "server_device"),
    (["scoring=magic"], "scoring"),
    (["eval_every=0"], "eval_every"),
    (["seed=-1"], "seed"),
    (["name=a/b"], "name"),
    (["rounds"], "rounds"),
    (["config=nope"], "config"),
]


@pytest.mark.parametrize(("argv", "field"), BAD)
def test_bad_value_names_the_field(argv: list[str], field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        load_config("cifar_noniid", argv)


@pytest.mark.parametrize(("argv", "suggestion"), [
    (["rouns=20"], "did you mean rounds?"),  # a flat name: the near flat name
    (["server_momentun=0.5"], "did you mean server_momentum?"),
    (["train.rouns=20"], "Did you mean: 'rounds'?"),  # a dotted one: OmegaConf's own, not twice
])
def test_unknown_key_names_the_nearest_setting(argv: list[str], suggestion: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config("cifar_noniid", argv)
    assert str(info.value).lower().count("did you mean") == 1 and suggestion in str(info.value)


def test_defaults_are_the_feddst_paper_setting() -> None:
    cfg = load_config("cifar_noniid", [])
    assert (cfg.data.num_clients, cfg.train.clients_per_round, cfg.train.rounds, cfg.train.local_epochs) == (400, 20, 400, 10)
    assert (cfg.mask.sparsity, cfg.readjust.alpha, cfg.readjust.readjust_every, cfg.readjust.readjust_until) == (0.8, 0.01, 15, 200)
    assert (cfg.data.split, cfg.data.classes_per_client, cfg.data.samples_per_class) == ("pathological", 2, 20)
    assert (cfg.train.batch_size, cfg.train.lr, cfg.train.momentum, cfg.train.weight_decay) == (32, 0.01, 0.9, 1e-3)


def test_overrides_and_faithful_resolution() -> None:
    cfg = load_config("cifar_noniid", ["rounds=20", "faithful=true", "strategy=fedavg"])
    assert cfg.train.rounds == 20 and cfg.readjust.readjust_until == 10 and cfg.train.strategy == "fedavg"
    assert (cfg.mask.budget, cfg.readjust.regrow_train_epochs, cfg.readjust.readjust_gradient) == ("feddst_erk", 0, "last_batch")
    assert config_from_yaml(cfg.to_yaml()) == cfg
    assert config_from_yaml(cfg.wire_yaml()) == cfg  # what nodes receive: the non-default keys
    assert "seed:" not in cfg.wire_yaml() and "rounds: 20" in cfg.wire_yaml()
    assert isinstance(cfg, Config)


def test_cli_bad_input_exits_2_with_one_clear_line() -> None:
    proc = subprocess.run([sys.executable, "-m", "simulations.cifar_noniid", "sparsity=1.5"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "sparsity" in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0


def test_ray_address_joins_a_cluster_without_resource_arguments() -> None:
    from fedsparse.runner import backend_config

    local = backend_config(load_config("cifar_noniid", ["num_actors=3"]))
    # a private instance, even if `ray start` left a cluster running on this machine
    assert local["init_args"]["num_cpus"] == 3 and local["init_args"]["address"] == "local"
    joined = backend_config(load_config("cifar_noniid", ["ray_address=10.0.0.5:6379", "num_actors=3"]))
    assert joined["init_args"] == {"address": "10.0.0.5:6379"}  # Ray refuses num_cpus etc. here
    assert joined["client_resources"] == {"num_cpus": 1, "num_gpus": 0.0}


def test_extends_takes_the_parent_file_then_overrides(tmp_path: Path) -> None:
    child = tmp_path / "child.yaml"
    child.write_text("extends: feddst_mnist\nrounds: 7\n")
    cfg = load_config(str(child))
    assert (cfg.data.dataset, cfg.model.model, cfg.train.rounds, cfg.readjust.readjust_until) == ("mnist", "mnist_net", 7, 3)
    assert cfg.name == "feddst_mnist"  # from the parent, which itself extends cifar_noniid
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text(f"extends: {b}\n")
    b.write_text(f"extends: {a}\n")
    with pytest.raises(ConfigError, match="loops back"):
        load_config(str(a))
    (tmp_path / "c.yaml").write_text("extends: no_such_config\n")
    with pytest.raises(ConfigError, match="no_such_config"):
        load_config(str(tmp_path / "c.yaml"))


def test_flat_and_dotted_keys_reach_the_same_section() -> None:
    flat = load_config("cifar_noniid", ["lr=0.1", "server_lr=0.5", "model=mlp", "dataset=mnist"])
    dotted = load_config("cifar_noniid", ["train.lr=0.1", "train.fedavgm.server_lr=0.5",
                                          "model.model=mlp", "data.dataset=mnist"])
    assert flat == dotted and hash(flat) == hash(dotted)
    assert (flat.train.lr, flat.train.fedavgm.server_lr, flat.model.model) == (0.1, 0.5, "mlp")
    assert flat.with_(lr=0.2).train.lr == 0.2 and flat.train.lr == 0.1
    with pytest.raises(ConfigError, match="train.bogus"):
        load_config("cifar_noniid", ["train.bogus=1"])


def test_old_flat_run_config_loads_and_sectioned_yaml_round_trips(tmp_path: Path) -> None:
    old = ROOT / "docs/results/cifar10-s0/feddst_faithful/config.yaml"  # written before sections
    assert "\nlr:" in "\n" + old.read_text()
    cfg = config_from_yaml(old.read_text())
    assert cfg.faithful and cfg.train.double_softmax and cfg.data.dataset == "cifar10"
    assert config_from_yaml(cfg.to_yaml()) == cfg
    assert cfg.to_yaml().startswith(f"# config hash: {cfg.hash()}\n")


def test_hash_ignores_only_execution_settings() -> None:
    cfg = load_config("cifar_noniid", ["rounds=20"])
    same = cfg.with_(name="x", output_dir="/tmp/x", progress=False, num_actors=3, log_level="debug")
    assert same.hash() == cfg.hash() and len(cfg.hash()) == 64
    assert cfg.with_(lr=0.02).hash() != cfg.hash() and cfg.with_(seed=1).hash() != cfg.hash()


def test_a_renamed_key_fails_naming_old_and_new(monkeypatch: pytest.MonkeyPatch) -> None:
    from fedsparse import config

    monkeypatch.setattr(config, "RENAMED", {"learning_rate": "lr"})
    with pytest.raises(ConfigError, match=r"^learning_rate \(command line\) was renamed to lr"):
        load_config("cifar_noniid", ["learning_rate=0.1"])


RUN_CONFIGS = "cifar_noniid, feddst_cifar10, feddst_cifar100, feddst_mnist"


@pytest.mark.parametrize("load, own", [
    (lambda args: load_config("cifar_noniid", args), RUN_CONFIGS),
    (load_bench_config, "pruning_bench"),
    (load_central_config, "centralized_sparse"),
])
def test_config_names_the_files_its_command_reads(load, own, tmp_path):
    """A missing config file, or one of configs/ made for another command (a methods list, the
    bench's or the centralized run's file), is one line naming only the files this command reads;
    a user's own file with a bad key still gets the key named."""
    for name, problem in (("nope", "file not found"), ("methods", "configs/methods.yaml is for another command")):
        with pytest.raises(ConfigError) as e:
            load([f"config={name}"])
        assert str(e.value) == f"config={name!r}: {problem}; give a YAML path or one of: {own}"
    own_file = tmp_path / "mine.yaml"
    own_file.write_text("no_such_key: 1\n")
    with pytest.raises(ConfigError, match="no_such_key"):
        load([f"config={own_file}"])
