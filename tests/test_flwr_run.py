"""`flwr run .` as Flower users run it: settings with `--run-config` (the keys declared in
pyproject.toml's `[tool.flwr.app.config]`), the run folder written and printed as with
`python -m simulations.cifar_noniid`, and bad input ending the run with one line, no run folder.

The local simulation runs on a SuperLink in simulation mode that this test starts on a free
loopback port (what `flwr run .` starts by itself on a fixed port when none is running).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import time
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fedsparse.config import Config, config_from_yaml
from fedsparse.fl.run_config import load_args
from tests.processes import stop, with_descendants

ROOT = Path(__file__).resolve().parent.parent
E2E_MARKS = (pytest.mark.e2e,
             pytest.mark.skipif(not os.environ.get("FEDSPARSE_DATA"), reason="needs FEDSPARSE_DATA (real MNIST)"),
             pytest.mark.skipif(shutil.which("flower-superlink") is None, reason="needs Flower's CLI tools"),
             pytest.mark.xdist_group("superlink"))  # its other APIs take Flower's default ports
RUN_S = 300  # bound on one `flwr run --stream`
SMALL = ('dataset="mnist" model="mnist_net" num_clients=3 clients_per_round=2 local_epochs=1 '
         'overrides="progress=false"')


def e2e(test: Callable[..., None]) -> Callable[..., None]:
    """The marks of a test that runs `flwr run` on real MNIST."""
    for mark in E2E_MARKS:
        test = mark(test)
    return test


def _declared() -> dict[str, object]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["flwr"]["app"]["config"]


def test_declared_keys_are_config_fields_with_their_defaults() -> None:
    declared = _declared()
    defaults = Config()
    assert {"config", "overrides", "strategy", "dataset", "model", "rounds", "num_clients",
            "clients_per_round", "sparsity", "seed", "local_epochs", "lr", "batch_size", "split",
            "output_dir", "data_dir"} <= set(declared)
    fields = defaults.flat()
    for key, value in declared.items():
        if key in ("config", "overrides"):
            continue
        assert key in fields, key
        assert value == ("" if fields[key] is None else fields[key]), key


def test_a_declared_key_applies_when_given_or_changed() -> None:
    declared = _declared()
    assert load_args(declared, {}) == ("cifar_noniid", [])  # the file's values hold
    run_config = {**declared, "config": "feddst_mnist", "overrides": "seed=3 progress=false",
                  "rounds": 2, "strategy": "fedavg", "lr": 0.05, "data_dir": "/data"}
    name, args = load_args(run_config, {"rounds": 2, "strategy": "fedavg", "config": "feddst_mnist"})
    assert name == "feddst_mnist"  # lr and data_dir were changed in pyproject.toml, not given
    assert args[:2] == ["seed=3", "progress=false"]  # the overrides first, then the declared keys
    assert sorted(args[2:]) == ["data_dir=/data", "lr=0.05", "rounds=2", "strategy=fedavg"]
    assert load_args({**declared, "resume": ""}, {"resume": ""})[1] == ["resume=null"]


@pytest.fixture(scope="module")
def superlink(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, str], Path]]:
    """A SuperLink in simulation mode on a free port; yields (environment for `flwr`, a folder)."""
    tmp = tmp_path_factory.mktemp("flwr")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (tmp / "home").mkdir()
    (tmp / "home" / "config.toml").write_text(
        f'[superlink]\ndefault = "sim"\n\n[superlink.sim]\naddress = "127.0.0.1:{port}"\ninsecure = true\n')
    env = {**os.environ, "FLWR_HOME": str(tmp / "home"), "FLWR_TELEMETRY_ENABLED": "0",
           "FLWR_DISABLE_UPDATE_CHECK": "1", "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1"}
    log = open(tmp / "superlink.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(["flower-superlink", "--insecure", "--simulation", "--port", str(port),
                             "--disable-runtime-dependency-installation"], env=env, cwd=tmp,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None, (tmp / "superlink.log").read_text()
                time.sleep(0.2)
        yield env, tmp
    finally:
        _stop(proc)
        log.close()


def _stop(proc: subprocess.Popen) -> None:
    """Stop the SuperLink and every process it started (its SuperExec and simulation processes
    run in sessions of their own)."""
    pids = with_descendants([proc.pid])
    stop([proc], lambda: pids)


def _flwr_run(env: dict[str, str], run_config: str) -> subprocess.CompletedProcess:
    return subprocess.run(["flwr", "run", ".", "sim", "--stream", "--run-config", run_config,
                           "--federation-config", "num-supernodes=3"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=RUN_S)


@e2e
def test_run_config_keys_set_the_run_and_it_writes_the_run_folder(superlink) -> None:  # noqa: ANN001
    env, tmp = superlink
    out = tmp / "runs"
    proc = _flwr_run(env, f'rounds=2 strategy="fedavg" {SMALL} name="flwr" output_dir="{out}" '
                          f'data_dir="{os.environ["FEDSPARSE_DATA"]}"')
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    printed = re.findall(r"run folder: (\S+)", log)
    runs = list(out.glob("flwr-*"))
    assert len(runs) == 1 and printed == [str(runs[0])], log[-3000:]
    files = {p.name for p in runs[0].iterdir()}
    assert {"config.yaml", "metrics.jsonl", "summary.json", "split_heatmap.png"} <= files, files
    assert any(name.endswith(".png") and name != "split_heatmap.png" for name in files), files
    config = config_from_yaml((runs[0] / "config.yaml").read_text())
    assert (config.train.rounds, config.train.strategy, config.runtime.progress) == (2, "fedavg", False)
    rows = [json.loads(line) for line in (runs[0] / "metrics.jsonl").read_text().splitlines()]
    assert [r["round"] for r in rows] == [0, 1, 2] and rows[-1]["upload_bytes"] > 0


@e2e
def test_a_bad_value_ends_the_run_with_one_line_and_no_run_folder(superlink) -> None:  # noqa: ANN001
    env, tmp = superlink
    out = tmp / "bad"
    proc = _flwr_run(env, f'sparsity=0.999999 {SMALL} output_dir="{out}" '
                          f'data_dir="{os.environ["FEDSPARSE_DATA"]}"')
    log = proc.stdout + proc.stderr
    errors = [line for line in log.splitlines() if "sparsity=0.999999" in line]
    assert errors == ["error: sparsity=0.999999 is invalid: must be at most 0.999984 for "
                      "model='mnist_net' with budget='erk' (each of its 4 masked layers keeps at least "
                      "one of their 261750 weights)"], log[-3000:]
    assert "Traceback" not in log and not out.exists(), log[-3000:]
    # `flwr run` itself exits 0 once the SuperLink accepted the run (Flower 1.41 does not look at
    # how it ended); the run's own status says it failed:
    run_id = re.search(r"Successfully started run (\d+)", log).group(1)
    listing = subprocess.run(["flwr", "ls", "sim", "--run-id", run_id, "--format", "json"], cwd=ROOT,
                             env=env, capture_output=True, text=True, timeout=60)
    status = json.loads(listing.stdout)["runs"][0]
    assert status["status"] == "finished:failed" and "sparsity=0.999999" in status["status-details"]
