"""The paper's full CIFAR-10 FedDST run: wall time and peak memory of all processes.

    python -m benchmarks.full_run [key=value ...]

Runs `simulations.cifar_noniid` as configured (FedDST, 400 clients, 20 per round, 400 rounds,
10 local epochs, evaluation every 10 rounds) and reports the wall time from start to the last
metrics row, the time spent in rounds, in evaluations and in start-up, the peak PSS of the whole
process tree (driver, Ray services, client actors) with each process's share at the peak, and the
final accuracies. Overrides shorten it, e.g. `rounds=20`.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.memory import PeakMemory
from fedsparse import usage
from fedsparse.config import load_config
from fedsparse.runner import run_simulation


def main(argv: list[str]) -> None:
    usage.exit_if_help(argv, "benchmarks.full_run", "[key=value ...]", lambda: [usage.run_settings("cifar_noniid")],
                       "The key=value arguments are run settings, applied after this benchmark's own.")
    out = Path(tempfile.mkdtemp(prefix="fedsparse-full-"))
    cfg = load_config("cifar_noniid", ["progress=false", f"output_dir={out}", *argv])
    t0 = time.perf_counter()
    with PeakMemory() as mem:
        run = run_simulation(cfg)
    total = time.perf_counter() - t0
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    evals = sum(r.get("eval_s", 0.0) for r in rows)
    rounds = sum(r["round_time_s"] for r in rows[1:])
    startup = rows[0]["wall_time_s"]
    last = rows[-1]
    print(f"{cfg.train.rounds} rounds of {cfg.train.strategy} on {cfg.data.dataset}, {cfg.data.num_clients} clients, "
          f"{cfg.train.clients_per_round} per round, {cfg.train.local_epochs} local epochs, run folder {run}")
    print(f"wall time {total / 60:.1f} min: start-up {startup:.0f} s, rounds {rounds:.0f} s "
          f"({rounds / cfg.train.rounds:.2f} s/round, of which evaluation {evals:.0f} s)")
    print(f"peak memory {mem.peak / 2**30:.2f} GiB ({mem.peak / 1e9:.2f} GB), by process at the peak:")
    for name, pss in sorted(mem.at_peak.items(), key=lambda kv: -kv[1]):
        print(f"  {pss / 2**20:7.0f} MiB  {name}")
    print(f"final central accuracy {last['central_accuracy']:.4f}, "
          f"client accuracy {last['client_accuracy']:.4f}")
    print(f"wall_min={total / 60:.2f} s_per_round={rounds / cfg.train.rounds:.3f} "
          f"peak_gb={mem.peak / 1e9:.3f} central_accuracy={last['central_accuracy']:.4f} "
          f"client_accuracy={last['client_accuracy']:.4f}")


if __name__ == "__main__":
    main(sys.argv[1:])
