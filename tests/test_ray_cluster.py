"""`ray_address` on a real two-node Ray cluster on this machine: a head (`ray start --head`) and a
second node (`ray start --address`), one CPU each, each with its own temporary folder and ports.
Two MNIST rounds (the MLP, which evaluates far faster than mnist_net) run on it with
`ray_address=`; client actors must run on both nodes, as CPU clients that see no GPU, and the
metrics must equal those of a run on a private Ray instance.
Meanwhile a run asking for cuda clients must stop once it has joined this GPU-less cluster.

Each node runs as `ray start --block` in a session of its own, so the test tells the two nodes'
processes apart by session id and stops exactly them afterwards (`ray stop` would stop every Ray
process on the machine, other runs' included).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.test_deployment import _free_ports
from tests.processes import session_processes, stop

RAY = shutil.which("ray", path=str(Path(sys.executable).parent)) or shutil.which("ray")
"""Ray's command line tool, preferably the one installed with this Python's Ray."""
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not os.environ.get("FEDSPARSE_DATA"), reason="needs FEDSPARSE_DATA (real MNIST)"),
    pytest.mark.skipif(RAY is None, reason="needs Ray's `ray` command line tool"),
]

ROOT = Path(__file__).resolve().parent.parent
START_S = 60  # bound on one `ray start`
RUN_S = 300  # bound on one two-round run
RUN = ["dataset=mnist", "model=mlp", "num_clients=4", "clients_per_round=4", "rounds=2",
       "local_epochs=1", "progress=false", f"data_dir={os.environ.get('FEDSPARSE_DATA')}"]
ACTOR = b"ray::ClientAppActor"  # Ray names an actor's process ray::<class>; Flower's client actors


@dataclass
class Cluster:
    address: str
    sessions: dict[str, int]  # node name -> session id of its processes


def _start_node(name: str, args: list[str], temp: Path) -> subprocess.Popen:
    """`ray start --block ARGS` in a new session, with `temp/name` as its temporary folder and
    `temp/name.log` as its log."""
    with (temp / f"{name}.log").open("w") as log:
        return subprocess.Popen(
            [RAY, "start", "--block", "--num-cpus=1", "--num-gpus=0", "--disable-usage-stats",
             f"--object-store-memory={100 * 1024 * 1024}", f"--temp-dir={temp / name}",
             "--min-worker-port=0", "--max-worker-port=0", *args],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _wait_started(name: str, proc: subprocess.Popen, temp: Path) -> None:
    """Until node `name` has joined the cluster (its `ray start` says so once the GCS lists it)."""
    log_path = temp / f"{name}.log"
    deadline = time.monotonic() + START_S
    while "Ray runtime started." not in log_path.read_text():
        assert proc.poll() is None and time.monotonic() < deadline, log_path.read_text()[-3000:]
        time.sleep(0.2)


def _stop(procs: list[subprocess.Popen]) -> None:
    """SIGTERM, then SIGKILL, to every process of the nodes' sessions (the `ray start --block`
    processes, GCS, raylets, their workers)."""
    sessions = {p.pid for p in procs}  # each is the leader of its session
    stop(procs, lambda: session_processes(sessions))


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    """A head node and a second node on this machine, 1 CPU each (so one client actor each).
    Their temporary folders are under a short /tmp path: Ray's socket paths must fit in 107 bytes."""
    port, client_port, dashboard, agent0, agent1 = _free_ports(5)
    temp = Path(tempfile.mkdtemp(prefix="fsray-", dir="/tmp" if Path("/tmp").is_dir() else None))
    procs: list[subprocess.Popen] = []
    try:  # both at once: the second node waits for the head's GCS
        procs.append(_start_node("head", [
            "--head", f"--port={port}", f"--ray-client-server-port={client_port}",
            "--include-dashboard=false", f"--dashboard-port={dashboard}",
            f"--dashboard-agent-listen-port={agent0}"], temp))
        procs.append(_start_node("node2", [f"--address=127.0.0.1:{port}",
                                           f"--dashboard-agent-listen-port={agent1}"], temp))
        for name, proc in zip(("head", "node2"), procs):
            _wait_started(name, proc, temp)
        yield Cluster(f"127.0.0.1:{port}", {"head": procs[0].pid, "node2": procs[1].pid})
    finally:
        _stop(procs)
        shutil.rmtree(temp, ignore_errors=True)


def _start_run(name: str, args: list[str], tmp_path: Path) -> subprocess.Popen:
    """`python -m simulations.cifar_noniid RUN ARGS output_dir=tmp_path/name`, its output in
    `tmp_path/name.log`."""
    with (tmp_path / f"{name}.log").open("w") as log:
        return subprocess.Popen([sys.executable, "-m", "simulations.cifar_noniid", *RUN, *args,
                                 f"output_dir={tmp_path / name}"],
                                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)


def _finish(proc: subprocess.Popen, timeout: float) -> int:
    """Wait for a run; past `timeout`, stop it (Ctrl-C stops the run and its Ray)."""
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)
        return proc.wait(timeout=60)


@pytest.fixture
def private_run(tmp_path: Path) -> Iterator[subprocess.Popen]:
    """The same run on a private Ray instance with one client actor, started first so that it
    overlaps the cluster's start-up."""
    proc = _start_run("private", ["num_actors=1"], tmp_path)
    try:
        yield proc
    finally:
        _finish(proc, 0)


def _client_actors(sessions: set[int]) -> dict[int, tuple[int, bytes | None]]:
    """pid -> (session id, CUDA_VISIBLE_DEVICES) of the client actor processes in `sessions`."""
    found = {}
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            sid = os.getsid(int(proc.name))
            if sid not in sessions or not (proc / "cmdline").read_bytes().startswith(ACTOR):
                continue
            env = dict(var.split(b"=", 1) for var in (proc / "environ").read_bytes().split(b"\0")
                       if b"=" in var)
        except OSError:
            continue
        found[int(proc.name)] = (sid, env.get(b"CUDA_VISIBLE_DEVICES"))
    return found


def _rows(out: Path) -> list[dict]:
    """metrics.jsonl rows without timings (keys ending in `_s`)."""
    (run,) = out.iterdir()
    return [{k: v for k, v in json.loads(line).items() if not k.endswith("_s")}
            for line in (run / "metrics.jsonl").read_text().splitlines()]


SETUP_BYTES = ("download_bytes", "download_bytes_per_client", "cumulative_download_bytes")
"""Download fields that include each node's setup, which carries the config text: its lines
`ray_address` and `num_actors` differ between the two runs, so they may differ by a few dozen
deflated bytes per node (14 when measured)."""


def test_two_rounds_on_a_two_node_cluster(private_run: subprocess.Popen, cluster: Cluster,
                                          tmp_path: Path) -> None:
    # "cluster" is as long as "private": the nodes' state path has the same length in both runs
    run = _start_run("cluster", [f"ray_address={cluster.address}"], tmp_path)
    # meanwhile: cuda clients on this GPU-less cluster stop once the run has joined it
    gpu_run = _start_run("gpu", [f"ray_address={cluster.address}", "client_device=cuda",
                                 "client_gpus=1"], tmp_path)
    actors: dict[int, tuple[int, bytes | None]] = {}
    deadline = time.monotonic() + RUN_S
    try:
        while run.poll() is None and time.monotonic() < deadline:
            actors.update(_client_actors(set(cluster.sessions.values())))
            time.sleep(0.2)
    finally:
        code, gpu_code = _finish(run, 0), _finish(gpu_run, RUN_S)
    assert code == 0, (tmp_path / "cluster.log").read_text()[-3000:]
    # client actors on both nodes (1 CPU each; Ray may replace an actor's process), none of which
    # sees a GPU
    assert {sid for sid, _ in actors.values()} == set(cluster.sessions.values()), actors
    assert all(visible == b"" for _, visible in actors.values()), actors
    gpu_log = (tmp_path / "gpu.log").read_text()
    assert gpu_code == 2, gpu_log[-3000:]
    assert gpu_log.splitlines()[-1].startswith("error: client_device='cuda' is invalid: no node of "
                                               f"the Ray cluster at ray_address='{cluster.address}'")

    assert _finish(private_run, RUN_S) == 0, (tmp_path / "private.log").read_text()[-3000:]
    joined, private = _rows(tmp_path / "cluster"), _rows(tmp_path / "private")
    assert [r["round"] for r in joined] == [0, 1, 2]
    assert joined[-1]["central_accuracy"] > 0.0  # the last round is evaluated
    for a, b in zip(joined, private, strict=True):
        assert {k: v for k, v in a.items() if k not in SETUP_BYTES} == \
               {k: v for k, v in b.items() if k not in SETUP_BYTES}
        assert abs(a["download_bytes"] - b["download_bytes"]) <= 64 * len(b["download_bytes_per_client"])
