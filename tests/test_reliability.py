"""Reliability through the real runtime: a run killed with SIGKILL and resumed from its checkpoint
produces exactly the metrics of an uninterrupted run; injected client faults are counted and never
corrupt the global model."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from fedsparse.config import load_config
from fedsparse.fl import faults
from fedsparse.fl.sampling import sample_clients
from fedsparse.runner import main, run_simulation
from tests.processes import session_alive

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not os.environ.get("FEDSPARSE_DATA"), reason="needs FEDSPARSE_DATA (real MNIST)"),
]

ROOT = Path(__file__).resolve().parent.parent
WALL_CLOCK = {"round_time_s", "wall_time_s", "aggregate_s", "eval_s", "client_time_s"}  # every key in seconds
WAIT_S = 420  # bound on waiting for the killed run to reach its kill point

# FedDST on MNIST with checkpoints at rounds 0, 2, 4 and 6. The mask is readjusted in round 1 and
# then stays, so after a restart from round 2 or 4 some sampled clients (seed 0: client 7 in
# round 4, clients 3 and 8 in round 5) already hold the current mask from before the checkpoint
# and get no positions: the resumed run only matches if they kept it across the restart.
RUN = {"dataset": "mnist", "model": "mlp", "num_clients": 10, "clients_per_round": 3,
       "rounds": 6, "local_epochs": 1, "batch_size": 16, "readjust_every": 1, "readjust_until": 2,
       "alpha": 0.05, "eval_every": 3, "checkpoint_every": 2, "num_actors": 1, "progress": False,
       "name": "rel"}


def _argv(**overrides: object) -> list[str]:
    return [f"{k}={v}" for k, v in {**RUN, **overrides}.items()]


def _rows(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _strip(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in WALL_CLOCK and not k.endswith("_s")} for r in rows]


def _last_round(out: Path) -> int:
    runs = list(out.glob("rel-*/metrics.jsonl"))
    if not runs:
        return -1
    lines = [line for line in runs[0].read_text().split("\n")[:-1] if line]
    return json.loads(lines[-1])["round"] if lines else -1


def test_killed_run_resumes_to_the_same_metrics(tmp_path: Path) -> None:
    # 1. A real run in its own process group (Ray's processes included), SIGKILLed mid-run.
    killed_out = tmp_path / "b"
    log = open(tmp_path / "killed.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([sys.executable, "-m", "simulations.cifar_noniid",
                             *_argv(output_dir=killed_out, logger="tensorboard")], cwd=ROOT,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + WAIT_S
        while _last_round(killed_out) < 3 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        reached = _last_round(killed_out)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
        log.close()
    assert 3 <= reached < RUN["rounds"], (reached, (tmp_path / "killed.log").read_text()[-3000:])
    deadline = time.monotonic() + 30
    while session_alive(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not session_alive(proc.pid)  # Ray's processes went down with it
    killed = next(killed_out.glob("rel-*"))
    assert (killed / "checkpoint" / "checkpoint.json").is_file() and not (killed / "summary.json").exists()

    # 2. The same run, uninterrupted (same output path length, so the config text has the same size).
    whole = run_simulation(load_config("cifar_noniid", _argv(output_dir=tmp_path / "a",
                                                             logger="tensorboard")))

    # 3. Resume the killed run; rows written after its checkpoint are replaced, none duplicated.
    assert main("cifar_noniid", [f"resume={killed}"]) == 0
    resumed = _rows(killed)
    assert [r["round"] for r in resumed] == list(range(RUN["rounds"] + 1))
    assert _strip(resumed) == _strip(_rows(whole))
    assert resumed[1]["mask_changes"] > 0 and resumed[-1]["cumulative_upload_bytes"] > 0
    assert all(sum(r["failures"].values()) == 0 for r in resumed[1:])
    restarts = json.loads((killed / "summary.json").read_text())["restarts"]
    assert len(restarts) == 1 and restarts[0]["from_round"] in (2, 4)
    # after the restart the server skipped the positions for some clients (their download is
    # smaller than round 1's, where every client needed them): their durable mask was used
    with_positions = min(resumed[1]["download_bytes_per_client"].values())
    after = resumed[restarts[0]["from_round"] + 1:]
    assert any(b < with_positions for r in after for b in r["download_bytes_per_client"].values())
    # the setup sent again to clients the run had set up before the restart is the restart's
    # cost (no reply of its own: it rides the train messages, and the engine told the mapping)
    assert restarts[0]["setup_download_bytes"] > 0 and restarts[0]["setup_upload_bytes"] == 0
    # metrics.csv and the TensorBoard events hold each round once too, with the resumed values
    rounds = list(range(RUN["rounds"] + 1))
    assert [int(line["round"]) for line in csv.DictReader((killed / "metrics.csv").open())] == rounds
    events = EventAccumulator(str(killed / "tensorboard"))
    events.Reload()
    points = events.Scalars("bytes/cumulative_upload")
    assert [e.step for e in points] == rounds
    assert [e.value for e in points] == pytest.approx([r["cumulative_upload_bytes"] for r in resumed])


def _fault_seed(rounds: int) -> int:
    """A seed whose injected faults (failure 0.3, drop-out 0.3) take out every sampled client in
    round 1 and only some of them in the later rounds."""
    for seed in range(200):
        hit = [[faults.drops_out(seed, r, p, 0.3) or faults.fails(seed, r, p, 0.3)
                for p in sample_clients(seed, r, range(10), 3)] for r in range(1, rounds + 1)]
        if all(hit[0]) and all(any(h) and not all(h) for h in hit[1:]):
            return seed
    raise AssertionError("no suitable seed")


def test_injected_failures_and_dropouts_are_counted_and_survived(tmp_path: Path) -> None:
    seed = _fault_seed(3)
    cfg = load_config("cifar_noniid", _argv(output_dir=tmp_path, seed=seed, rounds=3,
                                            readjust_until=3, eval_every=1, checkpoint_every=0,
                                            client_failure_rate=0.3, client_dropout_rate=0.3))
    rows = _rows(run_simulation(cfg))
    assert [r["round"] for r in rows] == [0, 1, 2, 3]
    for row in rows[1:]:
        r = row["round"]
        pids = sample_clients(seed, r, range(10), 3)
        dropped = [p for p in pids if faults.drops_out(seed, r, p, 0.3)]
        failed = [p for p in pids if p not in dropped and faults.fails(seed, r, p, 0.3)]
        assert row["failures"] == {"errors": len(failed), "rejected": 0, "dropped": len(dropped),
                                   "missing": 0}
        # a lost reply's bytes never arrived; a failed client sends none
        assert sorted(int(p) for p in row["upload_bytes_per_client"]) == sorted(
            set(pids) - set(dropped) - set(failed))
        assert len(row["download_bytes_per_client"]) == 3
    # round 1: nobody got through, so the global model is exactly the initial one
    assert rows[1]["upload_bytes"] == 0 and "train_loss" not in rows[1]
    for key in ("central_loss", "central_accuracy", "density", "mask_version"):
        assert rows[1][key] == rows[0][key]
    # later rounds aggregate the replies that arrived
    assert all(r["train_loss"] > 0 and r["upload_bytes"] > 0 for r in rows[2:])
    assert rows[3]["central_loss"] != rows[0]["central_loss"]
