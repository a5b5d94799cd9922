"""Simulator overhead: the same rounds through Flower + Ray and as a plain loop.

    python -m benchmarks.overhead [rounds=5] [key=value ...]

Both sides run the same clients (same seeded sampling), model, data, epochs and server logic
(the strategy's own `server_update`, evaluation every `eval_every` rounds); the plain loop calls
`client_update` directly in `num_actors` worker processes, with no Flower, Ray or encoding.
efficiency = plain time / simulator time over rounds 2..R, for the default `cifar_noniid`
workload and for tiny clients (1 local epoch). Round 1 is reported apart on both sides: the
simulator's nodes get their setup with their first message, so its round 1 holds the client
actors' data and model building, which the plain loop does in its worker initialiser.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import sys
import tempfile
import time
from pathlib import Path

import torch

from fedsparse import usage
from fedsparse.config import Config, load_config
from fedsparse.experiment import experiment_from_yaml
from fedsparse.fl.sampling import sample_clients
from fedsparse.fl.server_app import ServerEvaluator
from fedsparse.fl.strategies import STRATEGIES
from fedsparse.fl.strategies.base import float_state
from fedsparse.runner import num_actors, run_simulation
from fedsparse.sparse.aggregate import sparse_average
from fedsparse.sparse.mask import Mask
from fedsparse.train.client_update import client_update

_worker_yaml = ""


def _init_worker(yaml_text: str) -> None:
    global _worker_yaml
    torch.set_num_threads(1)
    _worker_yaml = yaml_text
    experiment_from_yaml(yaml_text)


def _train_one(args: tuple) -> tuple:
    state, mask, pid, server_round, instructions = args
    exp = experiment_from_yaml(_worker_yaml)
    model = exp.new_model()
    model.load_state_dict(state, strict=False)
    result = client_update(exp, model, mask, pid, server_round,
                           proximal_mu=float(instructions.get("proximal_mu", 0.0)),
                           readjust=bool(instructions.get("readjust", False)),
                           drop_fraction=float(instructions.get("drop_fraction", 0.0)))
    return pid, float_state(model), result.mask, result.num_examples


def plain_rounds(cfg: Config) -> list[float]:
    """Seconds of each of rounds 1..R of `cfg` as a plain loop over `num_actors` worker processes."""
    yaml_text = cfg.to_yaml()
    exp = experiment_from_yaml(yaml_text)
    strategy = STRATEGIES.get(cfg.train.strategy).load()(exp, torch.device("cpu"), {})
    strategy.initialize(None)  # server-side scoring needs no grid
    evaluator = ServerEvaluator(exp, torch.device("cpu"))
    workers = num_actors(cfg)
    pool = mp.get_context("spawn").Pool(workers, _init_worker, (yaml_text,)) if workers > 1 else None
    if pool is None:
        _init_worker(yaml_text)
    times = []
    for server_round in range(1, cfg.train.rounds + 1):
        t0 = time.perf_counter()
        pids = sample_clients(cfg.seed, server_round, range(cfg.data.num_clients), cfg.train.clients_per_round)
        instructions = strategy.client_instructions(server_round)
        jobs = [(strategy.state, strategy.mask, pid, server_round, instructions) for pid in pids]
        results = sorted(pool.map(_train_one, jobs) if pool else map(_train_one, jobs),
                         key=lambda r: r[0])
        _, states, masks, weights = zip(*results)
        masks = list(masks) if strategy.masked else [Mask({})] * len(states)
        average, union = sparse_average(states, masks, weights, strategy.masked)
        strategy.server_update(server_round, average, union if strategy.masked else None)
        if server_round % cfg.runtime.eval_every == 0 or server_round == cfg.train.rounds:
            evaluator(strategy.state)
        times.append(time.perf_counter() - t0)
    if pool:
        pool.close()
    return times


def simulator_rounds(cfg: Config) -> tuple[list[float], float]:
    """(seconds of each of rounds 1..R, start-up seconds until round 0 was written) through Flower + Ray."""
    run = run_simulation(cfg)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [r["round_time_s"] for r in rows[1:]], rows[0]["wall_time_s"]


def measure(name: str, cfg: Config) -> dict[str, float]:
    sim_rounds, startup = simulator_rounds(cfg)
    plain_times = plain_rounds(cfg)
    sim, plain = sum(sim_rounds[1:]), sum(plain_times[1:])
    eff = plain / sim
    print(f"{name:8s} rounds=2..{cfg.train.rounds} epochs={cfg.train.local_epochs} actors={num_actors(cfg)}: "
          f"plain {plain:7.2f}s  simulator {sim:7.2f}s  efficiency {eff:.3f}  "
          f"(round 1: plain {plain_times[0]:.1f}s, simulator {sim_rounds[0]:.1f}s; "
          f"simulator start-up {startup:.1f}s)", flush=True)
    return {f"efficiency_{name}": eff, f"plain_s_{name}": plain, f"simulator_s_{name}": sim,
            f"round1_plain_s_{name}": plain_times[0], f"round1_simulator_s_{name}": sim_rounds[0],
            f"startup_s_{name}": startup}


def main(argv: list[str]) -> None:
    usage.exit_if_help(argv, "benchmarks.overhead", "[rounds=5] [key=value ...]", lambda: [usage.run_settings("cifar_noniid")],
                       "The key=value arguments are run settings, applied after this benchmark's own.")
    out = Path(tempfile.mkdtemp(prefix="fedsparse-overhead-"))
    base = ["rounds=5", f"output_dir={out}", "progress=false", "eval_every=5", *argv]
    figures: dict[str, float] = {}
    figures |= measure("default", load_config("cifar_noniid", base))
    figures |= measure("tiny", load_config("cifar_noniid", [*base, "local_epochs=1",
                                                            "regrow_train_epochs=0"]))
    print(" ".join(f"{k}={v:.3f}" for k, v in figures.items()))


if __name__ == "__main__":
    main(sys.argv[1:])
