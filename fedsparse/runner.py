"""Build a run from a config and start it on Flower's simulation engine (Ray)."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

# RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO=0: Ray's coming default (ray/_private/worker.py warns on every
# ray.init until it is 0): an actor given no GPU keeps CUDA_VISIBLE_DEVICES as it is, instead of
# having it emptied. CPU client actors get an empty CUDA_VISIBLE_DEVICES from `worker_env` instead,
# so that they cannot touch a GPU; with client_device=cuda Ray sets it to the GPU each actor holds.
for _var, _value in (("FLWR_TELEMETRY_ENABLED", "0"), ("FLWR_DISABLE_UPDATE_CHECK", "1"),
                     ("RAY_DEDUP_LOGS", "0"), ("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")):
    os.environ.setdefault(_var, _value)

from fedsparse.config import Config, load_config  # noqa: E402
from fedsparse.errors import ConfigError, DataError  # noqa: E402
from fedsparse.prepare import prepare  # noqa: E402
from fedsparse import usage  # noqa: E402
from fedsparse import interrupt  # noqa: E402
from fedsparse.logs import setup_logging  # noqa: E402
from fedsparse.metrics.run_folder import SUMMARY_FILE  # noqa: E402
from fedsparse.metrics.summary import summary_lines  # noqa: E402

OBJECT_STORE_BYTES = 256 * 1024 * 1024
CLI = "simulations.cifar_noniid"
"""The module whose command line `main` is (named in the resume command of an interrupted run)."""


def visible_gpus(cfg: Config) -> int:
    """GPUs a private Ray instance gives the client actors: the CUDA devices torch sees with
    client_device=cuda, else none (nothing CUDA is asked for)."""
    if cfg.runtime.client_device != "cuda":
        return 0
    import torch

    return torch.cuda.device_count()


def num_actors(cfg: Config, gpus: int | None = None) -> int:
    """Client actors of a private Ray instance: `num_actors`, else one per core; with
    client_device=cuda at most as many as `gpus` GPUs (default: `visible_gpus`) hold at
    `client_gpus` each, rounded down as Flower sizes its actor pool. The server needs no core of
    its own: it aggregates and evaluates between rounds, while the clients wait for the next
    round's messages (measured on 2 cores, CIFAR-10 default: 3.7 s per round with 2 actors, 5.9 s
    with 1)."""
    cpus = cfg.runtime.num_actors if cfg.runtime.num_actors is not None else (os.cpu_count() or 1)
    if cfg.runtime.client_device != "cuda":
        return cpus
    gpus = visible_gpus(cfg) if gpus is None else gpus
    return min(cpus, int(gpus / cfg.runtime.client_gpus))


def backend_config(cfg: Config, gpus: int | None = None) -> dict:
    """Ray placement: one CPU and `client_gpus` of a GPU per client actor, `num_actors(cfg, gpus)`
    of them on a private Ray instance given `gpus` GPUs (default: `visible_gpus`).

    With `ray_address` the run joins an existing Ray cluster (`ray start --head` ...): Ray refuses
    resource arguments when connecting, so only the address is passed and the cluster's own CPUs
    (and GPUs) decide how many client actors run (`num_actors` is then unused). Without it the run
    starts a private Ray instance (`address="local"`), even when a cluster started with `ray start`
    is running on the machine (plain `ray.init()` would try to join that one and refuse `num_cpus`).
    """
    resources = {"num_cpus": 1, "num_gpus": cfg.runtime.client_gpus}
    if cfg.runtime.ray_address:
        return {"client_resources": resources, "init_args": {"address": cfg.runtime.ray_address}}
    gpus = visible_gpus(cfg) if gpus is None else gpus
    return {
        "client_resources": resources,
        "init_args": {"address": "local", "num_cpus": num_actors(cfg, gpus), "num_gpus": gpus,
                      "include_dashboard": False, "object_store_memory": OBJECT_STORE_BYTES},
    }


def worker_env(cfg: Config) -> dict[str, str]:
    """Environment of the run's Ray workers (the client actors): this process's `sys.path` as
    PYTHONPATH, as Flower does; with client_device=cpu an empty CUDA_VISIBLE_DEVICES, so that a
    CPU client cannot touch a GPU that the server or another run uses."""
    env = {"PYTHONPATH": os.pathsep.join(sys.path)}
    if cfg.runtime.client_device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""
    return env


def start_ray(cfg: Config) -> None:
    """`ray.init` with `backend_config(cfg)`'s arguments; Flower's engine then uses this Ray as it is.

    Started here rather than by Flower so that it happens in this thread, after which
    `interrupt.after_ray_init` can put back the SIGTERM handler that Ray replaces in a process
    that starts a Ray node. The workers get `worker_env`. Ray's own log level follows `log_level`
    (debug: Ray's info). A cluster (`ray_address`) asked for cuda clients must have a node with
    `client_gpus` of a GPU: ConfigError otherwise, before any actor starts.
    """
    import ray

    level = "info" if cfg.runtime.log_level == "debug" else cfg.runtime.log_level
    ray.init(**backend_config(cfg)["init_args"], logging_level=level.upper(), log_to_driver=True,
             runtime_env={"env_vars": worker_env(cfg)})
    interrupt.after_ray_init()
    if cfg.runtime.ray_address and cfg.runtime.client_device == "cuda":
        most = max((n["Resources"].get("GPU", 0) for n in ray.nodes() if n["Alive"]), default=0)
        if most < cfg.runtime.client_gpus:
            raise ConfigError(f"client_device='cuda' is invalid: no node of the Ray cluster at "
                              f"ray_address={cfg.runtime.ray_address!r} has client_gpus={cfg.runtime.client_gpus} "
                              "of a GPU (start GPU nodes with `ray start --num-gpus=N`)")


def run_simulation(cfg: Config) -> Path:
    """Run `cfg` on Flower's simulation engine; returns the run folder.

    Flower's patches apply when `flower_patches.install(cfg)` allows (fl/flower_patches/). Flower
    1.41 deprecates `flwr.simulation.run_simulation`; it is kept on purpose (docs/architecture.md
    "Flower versions and internals") and its notice demoted to DEBUG (fedsparse/logs.py).
    """
    import ray
    from flwr.simulation import run_simulation as flwr_run_simulation

    from fedsparse.fl import flower_patches
    from fedsparse.fl.client_app import app as client_app
    from fedsparse.fl.server_app import make_server_app

    setup_logging(cfg.runtime.log_level)
    flower_patches.install(cfg)
    run = prepare(cfg)
    interrupt.run_started(run.path)
    print(f"run folder: {run.path}", flush=True)
    try:
        start_ray(cfg)
        flwr_run_simulation(server_app=make_server_app(cfg, run), client_app=client_app,
                            num_supernodes=cfg.data.num_clients, backend_config=backend_config(cfg))
    finally:
        ray.shutdown()
    return run.path


def main(default_config: str, argv: Sequence[str] | None = None) -> int:
    """CLI: `python -m simulations.X [-v] [config=NAME] [key=value ...]`; bad input -> exit 2, no
    traceback; `-v` = `log_level=debug`. Ends with a report of the run (`summary_lines`).

    Ctrl-C or SIGTERM ends the process (`interrupt.finish`: exit 130 or 143, with the command that
    resumes the run), so an interrupted `main` never returns.
    """
    args = ["log_level=debug" if a in ("-v", "--verbose") else a
            for a in (sys.argv[1:] if argv is None else argv)]
    usage.exit_if_help(args, f"simulations.{default_config}", "[-v] [config=NAME_OR_PATH] [key=value ...]",
                       lambda: [usage.run_settings(default_config)], usage.RUN_NOTES)
    t_start = time.perf_counter()
    with interrupt.raise_on_signals(CLI):
        try:
            path = run_simulation(load_config(default_config, args))
        except (ConfigError, DataError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        except interrupt.Interrupted as e:
            interrupt.finish(e)
    summary = json.loads((path / SUMMARY_FILE).read_text(encoding="utf-8"))
    print("\n".join(summary_lines(summary, path, time.perf_counter() - t_start)), flush=True)
    return 0
