"""Client-tasks per second: a plain Flower FedAvg app against fedsparse's fedavg, same rounds.

    python -m benchmarks.vs_flower [rounds=6] [key=value ...]

Both run the same model, data, split, clients per round and local epochs (default: tiny clients,
1 local epoch, the workload where per-task overhead shows) on the same Ray placement. The plain
app runs twice: with the network written with stock layers, as a plain app would write it, and
with fedsparse's own module (its faster pooling), so the ratio without that gain is shown too.
Rounds 2..R are timed on both sides (round 1 of the plain app includes its client start-up),
without fedsparse's server-side evaluation, which the plain app does not do.
"""

from __future__ import annotations

import json
import logging
import sys
import tempfile
from pathlib import Path

from flwr.simulation import run_simulation as flwr_run_simulation

from benchmarks import plain_flower_app
from fedsparse import usage
from fedsparse.config import load_config
from fedsparse.runner import backend_config, run_simulation


def main(argv: list[str]) -> None:
    usage.exit_if_help(argv, "benchmarks.vs_flower", "[rounds=6] [key=value ...]", lambda: [usage.run_settings("cifar_noniid")],
                       "The key=value arguments are run settings, applied after this benchmark's own.")
    logging.getLogger("flwr").setLevel(logging.WARNING)
    out = Path(tempfile.mkdtemp(prefix="fedsparse-vsflower-"))
    cfg = load_config("cifar_noniid", ["strategy=fedavg", "rounds=6", "local_epochs=1",
                                       "eval_every=100000", "progress=false", f"output_dir={out}",
                                       *argv])
    tasks = (cfg.train.rounds - 1) * cfg.train.clients_per_round
    plain = {}
    for stock_layers in (True, False):
        marks: list[float] = []
        flwr_run_simulation(server_app=plain_flower_app.make_server_app(cfg, marks, stock_layers),
                            client_app=plain_flower_app.app, num_supernodes=cfg.data.num_clients,
                            backend_config=backend_config(cfg))
        plain[stock_layers] = marks[-1] - marks[1]
    run = run_simulation(cfg)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    ours = sum(r["round_time_s"] - r.get("eval_s", 0.0) for r in rows[2:])
    print(f"plain Flower FedAvg, stock layers:     {tasks / plain[True]:6.2f} client-tasks/s "
          f"({plain[True]:.1f} s for {tasks} tasks)")
    print(f"plain Flower FedAvg, fedsparse's model: {tasks / plain[False]:6.2f} client-tasks/s "
          f"({plain[False]:.1f} s)")
    print(f"fedsparse fedavg:                       {tasks / ours:6.2f} client-tasks/s ({ours:.1f} s)")
    print(f"tasks_per_s_flower={tasks / plain[True]:.3f} "
          f"tasks_per_s_flower_same_module={tasks / plain[False]:.3f} "
          f"tasks_per_s_fedsparse={tasks / ours:.3f} ratio={plain[True] / ours:.3f} "
          f"ratio_same_module={plain[False] / ours:.3f}")


if __name__ == "__main__":
    main(sys.argv[1:])
