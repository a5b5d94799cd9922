"""Bad input through the CLI entry: every case exits with code 2 and ONE line naming the setting,
no traceback, and no run started (tests/test_config.py covers `load_config` itself)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fedsparse.config import load_config
from fedsparse.runner import main

ROOT = Path(__file__).resolve().parent.parent
needs_data = pytest.mark.skipif(not os.environ.get("FEDSPARSE_DATA"), reason="needs FEDSPARSE_DATA (real MNIST)")
SMALL = ["dataset=mnist", "model=mnist_net", "num_clients=10", "clients_per_round=3", "rounds=2",
         "progress=false", "download=false"]


@pytest.fixture
def bad_files(tmp_path: Path) -> dict[str, Path]:
    corrupt = tmp_path / "mnist-png.tar.gz"
    corrupt.write_bytes(os.urandom(4000))  # random bytes named like the real archive
    text = tmp_path / "notes.txt"
    text.write_text("not a dataset\n")
    finished = tmp_path / "finished"  # a run folder whose checkpoint is at its last round
    (finished / "checkpoint").mkdir(parents=True)
    (finished / "config.yaml").write_text(load_config("cifar_noniid", [*SMALL, "rounds=6"]).to_yaml())
    (finished / "checkpoint" / "checkpoint.json").write_text('{"round": 6}')
    fresh = tmp_path / "fresh"  # a run folder killed before its first checkpoint
    fresh.mkdir()
    (fresh / "config.yaml").write_text((finished / "config.yaml").read_text())
    damaged = tmp_path / "damaged"  # a checkpoint whose tensor file does not match its SHA-256
    (damaged / "checkpoint").mkdir(parents=True)
    (damaged / "config.yaml").write_text((finished / "config.yaml").read_text())
    (damaged / "checkpoint" / "tensors-r00000002.pt").write_bytes(b"not a checkpoint")
    (damaged / "checkpoint" / "checkpoint.json").write_text(
        '{"format": 1, "round": 2, "tensors": "tensors-r00000002.pt", "sha256": "0", "strategy": {}}')
    return {"corrupt": corrupt, "text": text, "finished": finished, "fresh": fresh, "damaged": damaged}


# (arguments, the setting the one-line message must name); {name} -> bad_files[name]
CASES = [
    (["rounds=ten"], "rounds"),                                   # wrong type
    (["progress=maybe"], "progress"),                             # wrong type (bool)
    (["unknown_key=1"], "unknown_key"),                           # unknown key
    (["rounds"], "rounds"),                                       # not key=value
    (["config=no_such_file"], "config"),                          # unknown config file
    (["strategy=fedfoo"], "strategy"),                            # unknown strategy
    (["model=gpt"], "model"),                                     # unknown model
    (["dataset=imagenet"], "dataset"),                            # unknown dataset
    (["split=banana"], "split"),                                  # unknown split
    (["sparsity=1.0"], "sparsity"),                               # outside [0, 1)
    (["sparsity=-0.2"], "sparsity"),
    (["lr=nan"], "lr"),                                           # not finite
    (["momentum=1.5"], "momentum"),
    (["local_epochs=0"], "local_epochs"),
    (["num_clients=10", "clients_per_round=11"], "clients_per_round"),
    (["checkpoint_every=-1"], "checkpoint_every"),
    (["client_failure_rate=1.0"], "client_failure_rate"),
    (["client_dropout_rate=-0.1"], "client_dropout_rate"),
    (["client_test=classes"], "client_test"),                     # pathological has no test choice
    (["criterion=grasp", "criterion_options.iterations=3"], "criterion_options.iterations"),  # synflow's
    (["granularity=channel", "input_keep=0.5"], "granularity"),  # structured + input selection
    (["data_dir=/no/such/folder"], "data_dir"),
    (["resume=/no/such/run"], "resume"),
    (["resume={fresh}"], "resume"),                               # no checkpoint yet
    (["resume={finished}"], "rounds"),                            # nothing left to run
    (["resume={finished}", "sparsity=0.5"], "sparsity"),          # resume changes nothing else
    (["resume={finished}", "config=cifar_noniid"], "config"),
]
DATA_CASES = [
    (["data_dir={corrupt}"], "data_dir"),                         # corrupt archive
    (["data_dir={text}"], "data_dir"),                            # a file that is no dataset
    (["samples_per_class=10000"], "samples_per_class"),           # more shards than exist
    (["split=shards", "num_clients=100", "shards_per_client=1000"], "shards_per_client"),
    (["resume={damaged}"], "resume"),                             # damaged checkpoint
]


@pytest.fixture
def no_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any case that got as far as starting Flower would be a test failure (and a long run)."""
    import flwr.simulation

    def refuse(**_: object) -> None:
        raise AssertionError("bad input started a simulation")

    monkeypatch.setattr(flwr.simulation, "run_simulation", refuse)


def _check(argv: list[str], field: str, files: dict[str, Path], out: Path, capsys) -> None:  # noqa: ANN001
    args = [a.format(**files) for a in argv]
    resuming = any(a.startswith("resume=") for a in args)  # a resumed run takes no other settings
    assert main("cifar_noniid", [*([] if resuming else [*SMALL, f"output_dir={out}"]), *args]) == 2, args
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and field in lines[0], (args, captured.err)
    assert "Traceback" not in captured.err and captured.out == ""


def test_bad_config_values_exit_2_with_one_line(bad_files, no_run, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    assert len(CASES) + len(DATA_CASES) >= 20
    for argv, field in CASES:
        _check(argv, field, bad_files, tmp_path / "out", capsys)
    assert not (tmp_path / "out").exists()  # nothing was created for bad input


@needs_data
def test_bad_data_exits_2_with_one_line(bad_files, no_run, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    for argv, field in DATA_CASES:
        _check(argv, field, bad_files, tmp_path / "out", capsys)
    assert not (tmp_path / "out").exists()


def test_real_cli_processes_exit_2_with_one_line(bad_files) -> None:  # noqa: ANN001
    cases = [(["client_failure_rate=1"], "client_failure_rate"),
             ([f"resume={bad_files['finished']}", "seed=3"], "seed")]
    procs = [(subprocess.Popen([sys.executable, "-m", "simulations.cifar_noniid", *argv], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True), field)
             for argv, field in cases]  # in parallel: each pays the import time
    for proc, field in procs:
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 2, err
        assert err.strip().count("\n") == 0 and field in err and "Traceback" not in err
        assert out == ""
