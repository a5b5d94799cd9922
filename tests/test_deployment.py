"""The same ServerApp/ClientApp on Flower's Deployment Engine: a SuperLink and two SuperNodes on
loopback (separate processes, as on real devices), two FedDST rounds started with `flwr run`.

The commands are the ones README.md's "Real devices" section gives.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.processes import stop, with_descendants

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not os.environ.get("FEDSPARSE_DATA"), reason="needs FEDSPARSE_DATA (real MNIST)"),
    pytest.mark.skipif(shutil.which("flower-superlink") is None, reason="needs Flower's CLI tools"),
    pytest.mark.xdist_group("superlink"),  # its other APIs take Flower's default ports
]

ROOT = Path(__file__).resolve().parent.parent
START_S = 60  # bound on the SuperLink opening its port
RUN_S = 480  # bound on the whole two-round run


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _stop(procs: list[subprocess.Popen]) -> None:
    """Stop the started processes and everything they started (SuperExec, ServerApp and ClientApp
    processes live in sessions of their own)."""
    pids = with_descendants([p.pid for p in procs])
    stop(procs, lambda: pids)


@pytest.fixture
def superlink(tmp_path: Path) -> Iterator[tuple[dict[str, str], str]]:
    """A SuperLink and two SuperNodes (partitions 0 and 1) on loopback; yields (env, connection)."""
    port, node0, node1 = _free_ports(3)
    base = {**os.environ, "FLWR_TELEMETRY_ENABLED": "0", "FLWR_DISABLE_UPDATE_CHECK": "1",
            "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1"}

    def home(name: str) -> dict[str, str]:  # each process keeps its own Flower home, as devices do
        (tmp_path / name).mkdir()
        return {**base, "FLWR_HOME": str(tmp_path / name)}

    cli = home("cli")
    (tmp_path / "cli" / "config.toml").write_text(
        '[superlink]\ndefault = "deployment"\n\n'
        f'[superlink.deployment]\naddress = "127.0.0.1:{port}"\ninsecure = true\n')
    procs: list[subprocess.Popen] = []

    def start(name: str, args: list[str]) -> None:
        log = open(tmp_path / f"{name}.log", "w")  # noqa: SIM115 - owned by the process
        procs.append(subprocess.Popen(args, env=home(name), cwd=tmp_path, stdout=log,
                                      stderr=subprocess.STDOUT, start_new_session=True))

    try:
        start("superlink", ["flower-superlink", "--insecure", "--port", str(port),
                            "--disable-runtime-dependency-installation"])
        deadline = time.monotonic() + START_S
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline and procs[0].poll() is None, \
                    (tmp_path / "superlink.log").read_text()
                time.sleep(0.2)
        # device 0 keeps its state on "its own disk" (state-dir); device 1 where the server says
        for pid, node_port, own in ((0, node0, f' state-dir="{tmp_path / "device0"}"'), (1, node1, "")):
            start(f"supernode{pid}", ["flower-supernode", "--insecure", "--superlink", f"127.0.0.1:{port}",
                                      "--port", str(node_port), "--node-config",
                                      f"partition-id={pid} num-partitions=2{own}"])
        yield cli, "deployment"
    finally:
        _stop(procs)


def test_two_feddst_rounds_on_the_deployment_engine(superlink, tmp_path: Path) -> None:  # noqa: ANN001
    env, connection = superlink
    out = tmp_path / "runs"
    overrides = (f"num_clients=2 clients_per_round=2 rounds=2 dataset=mnist model=mlp "
                 f"local_epochs=1 readjust_every=1 readjust_until=2 eval_every=1 progress=false "
                 f"name=dep output_dir={out} data_dir={os.environ['FEDSPARSE_DATA']}")
    proc = subprocess.run(["flwr", "run", ".", connection, "--stream", "--run-config",
                           f'overrides="{overrides}"'], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=RUN_S)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    runs = list(out.glob("dep-*"))
    assert len(runs) == 1 and (runs[0] / "summary.json").is_file(), proc.stdout[-3000:]
    rows = [json.loads(line) for line in (runs[0] / "metrics.jsonl").read_text().splitlines()]
    assert [r["round"] for r in rows] == [0, 1, 2]
    for row in rows[1:]:
        assert row["upload_bytes"] > 0 and row["download_bytes"] > 0
        assert row["failures"] == {"errors": 0, "rejected": 0, "dropped": 0, "missing": 0}
        assert sorted(row["upload_bytes_per_client"]) == ["0", "1"]
    assert rows[1]["mask_changes"] > 0  # FedDST readjusted the mask in round 1
    # each device kept the global mask it received: device 0 in its own state-dir
    assert list((tmp_path / "device0" / runs[0].name / "0").glob("mask-r*.npz"))
    assert [p.name for p in (runs[0] / "nodes").iterdir()] == ["1"]
    assert list((runs[0] / "nodes" / "1").glob("mask-r*.npz"))
