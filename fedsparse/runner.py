"""Build a run from a config and start it on Flower's simulation engine (Ray)."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

for _var, _value in (("FLWR_TELEMETRY_ENABLED", "0"), ("FLWR_DISABLE_UPDATE_CHECK", "1"),
                     ("RAY_DEDUP_LOGS", "0"), ("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "1")):
    os.environ.setdefault(_var, _value)

from fedsparse.config import Config, load_config  # noqa: E402
from fedsparse.errors import ConfigError, DataError  # noqa: E402
from fedsparse.experiment import Experiment, experiment_from_yaml  # noqa: E402
from fedsparse.fl.checkpoint import open_run_folder  # noqa: E402
from fedsparse.metrics.run_folder import RunFolder  # noqa: E402

OBJECT_STORE_BYTES = 256 * 1024 * 1024


def num_actors(cfg: Config) -> int:
    """Client actors: `num_actors`, else one per core. The server needs no core of its own: it
    aggregates and evaluates between rounds, while the clients wait for the next round's
    messages (measured on 2 cores, CIFAR-10 default: 3.7 s per round with 2 actors, 5.9 s with 1)."""
    if cfg.num_actors is not None:
        return cfg.num_actors
    return os.cpu_count() or 1


def backend_config(cfg: Config) -> dict:
    """Ray placement: one CPU and no GPU per client actor, `num_actors` of them.

    With `ray_address` the run joins an existing Ray cluster (`ray start --head` ...): Ray refuses
    resource arguments when connecting, so only the address is passed and the cluster's own CPUs
    decide how many client actors run (`num_actors` is then unused). Without it the run starts a
    private Ray instance (`address="local"`), even when a cluster started with `ray start` is
    running on the machine (plain `ray.init()` would try to join that one and refuse `num_cpus`).
    """
    if cfg.ray_address:
        return {"client_resources": {"num_cpus": 1, "num_gpus": 0.0},
                "init_args": {"address": cfg.ray_address}}
    return {
        "client_resources": {"num_cpus": 1, "num_gpus": 0.0},
        "init_args": {"address": "local", "num_cpus": num_actors(cfg), "num_gpus": 0,
                      "include_dashboard": False, "object_store_memory": OBJECT_STORE_BYTES},
    }


def prepare(cfg: Config) -> RunFolder:
    """Everything that can fail on bad input, before Ray starts: data, split, model."""
    from fedsparse.fl.server_app import server_device

    server_device(cfg)
    exp = experiment_from_yaml(cfg.to_yaml())
    exp.new_model()
    exp.masked_names  # noqa: B018 - builds the prunable-name list, checking the model once
    if cfg.resume is not None:
        _check_checkpoint(cfg, exp)
    run = open_run_folder(cfg)
    if cfg.resume is None:
        exp.split.save_heatmap(exp.data.train_y.numpy(), run.path_for("split_heatmap.png"))
    return run


def _check_checkpoint(cfg: Config, exp: Experiment) -> None:
    """The checkpoint to resume from must load and fit the model (before Ray starts)."""
    import torch

    from fedsparse.fl.checkpoint import load_checkpoint
    from fedsparse.fl.strategies import STRATEGIES

    try:
        _, state = load_checkpoint(cfg.resume)
    except DataError as e:
        raise DataError(f"resume={cfg.resume}: {e}") from None
    try:
        STRATEGIES.get(cfg.strategy)(exp, torch.device("cpu"), {}).load_state_dict(state)
    except (KeyError, ValueError, TypeError) as e:
        raise DataError(f"resume={cfg.resume}: the checkpoint does not fit this run ({e})") from None


def run_simulation(cfg: Config) -> Path:
    """Run `cfg` on Flower's simulation engine; returns the run folder."""
    from flwr.simulation import run_simulation as flwr_run_simulation

    from fedsparse.fl import vce_queue
    from fedsparse.fl.client_app import app as client_app
    from fedsparse.fl.server_app import make_server_app

    vce_queue.install()
    run = prepare(cfg)
    print(f"run folder: {run.path}", flush=True)
    flwr_run_simulation(server_app=make_server_app(cfg, run), client_app=client_app,
                        num_supernodes=cfg.num_clients, backend_config=backend_config(cfg))
    return run.path


def main(default_config: str, argv: Sequence[str] | None = None) -> int:
    """CLI: `python -m simulations.X [config=NAME] [key=value ...]`; bad input -> exit 2, no traceback."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        cfg = load_config(default_config, sys.argv[1:] if argv is None else argv)
        run_simulation(cfg)
    except (ConfigError, DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0
