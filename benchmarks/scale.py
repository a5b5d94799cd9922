"""Scale: start-up, seconds per round and peak memory (all processes) at 100, 10,000 and 100,000
clients.

    python -m benchmarks.scale [sizes=100,10000,100000] [key=value ...]

Every size runs the same per-client work (FedDST on cifar10_net, pathological split with 2 x 2
images per client, 1 local epoch, 20 clients per round; `reuse_shards=true`, as 100,000 clients
need more shards than CIFAR-10's 50,000 images hold), so the growth of seconds per round with the
number of clients is the simulator's own cost. Start-up is reported apart: from the call to the
round-0 row (data and split, Ray, the engine registering the nodes, the server's initial mask and
first evaluation), and the server's own part of it (from the ServerApp's start).
"""

from __future__ import annotations

import json
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchmarks.memory import PeakMemory
from fedsparse import usage
from fedsparse.config import load_config
from fedsparse.runner import run_simulation

SIZES = [100, 10000, 100000]


def _watch_first_row(out: Path, stop: threading.Event, seen: list[float]) -> None:
    """Note the time the first metrics row (round 0) appears under `out`."""
    while not stop.is_set():
        if any(p.stat().st_size > 0 for p in out.glob("*/metrics.jsonl")):
            seen.append(time.perf_counter())
            return
        stop.wait(0.05)


def main(argv: list[str]) -> None:
    usage.exit_if_help(argv, "benchmarks.scale", "[sizes=100,10000,100000] [key=value ...]",
                       lambda: [usage.run_settings("cifar_noniid")],
                       "The key=value arguments are run settings, applied after this benchmark's own.")
    sizes = SIZES
    rest = []
    for arg in argv:
        if arg.startswith("sizes="):
            sizes = [int(s) for s in arg.split("=", 1)[1].split(",")]
        else:
            rest.append(arg)
    out = Path(tempfile.mkdtemp(prefix="fedsparse-scale-"))
    figures: dict[str, float] = {}
    for n in sizes:
        cfg = load_config("cifar_noniid", [
            f"num_clients={n}", "samples_per_class=2", "reuse_shards=true", "local_epochs=1",
            "regrow_train_epochs=0", "rounds=5", "eval_every=5", "progress=false",
            f"output_dir={out / str(n)}", *rest])
        stop, seen = threading.Event(), []
        watcher = threading.Thread(target=_watch_first_row, args=(out / str(n), stop, seen), daemon=True)
        watcher.start()
        t0 = time.perf_counter()
        with PeakMemory() as mem:
            run = run_simulation(cfg)
        stop.set()
        watcher.join()
        rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        per_round = sum(r["round_time_s"] for r in rows[2:]) / max(1, len(rows) - 2)
        startup = seen[0] - t0 if seen else float("nan")
        server_startup = rows[0]["wall_time_s"]
        print(f"clients={n:6d}: {per_round:6.2f} s/round (rounds 2..{len(rows) - 1}), "
              f"start-up {startup:6.1f} s (server {server_startup:5.1f} s), "
              f"peak memory {mem.peak / 2**30:5.2f} GiB", flush=True)
        figures[f"s_per_round_{n}"] = per_round
        figures[f"startup_s_{n}"] = startup
        figures[f"server_startup_s_{n}"] = server_startup
        figures[f"peak_gib_{n}"] = mem.peak / 2**30
    if len(sizes) > 1:
        figures["growth"] = figures[f"s_per_round_{sizes[-1]}"] / figures[f"s_per_round_{sizes[0]}"]
    print(" ".join(f"{k}={v:.3f}" for k, v in figures.items()))


if __name__ == "__main__":
    main(sys.argv[1:])
