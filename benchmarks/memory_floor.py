"""The memory of a simulation before it does any work: the floor under `full_run`'s peak.

    python -m benchmarks.memory_floor [key=value ...]

Starts Ray as a run does (`fedsparse.runner.backend_config`), with one actor per client slot;
each actor imports the ClientApp's modules and builds one torch optimizer (a client's first task
imports `torch._dynamo` that way), the driver imports what a run's driver imports. Nothing is
loaded, built or trained. Prints the PSS of every process and the total.
"""

from __future__ import annotations

import os
import sys
import time

import ray

from benchmarks.memory import tree_pss
from fedsparse import usage
from fedsparse.config import load_config
from fedsparse.runner import backend_config, num_actors


@ray.remote
class IdleClient:
    """An actor holding only what a client actor imports."""

    def ready(self) -> int:
        import torch

        import fedsparse.fl.client_app  # noqa: F401

        torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
        return os.getpid()


def main(argv: list[str]) -> None:
    usage.exit_if_help(argv, "benchmarks.memory_floor", "[key=value ...]", lambda: [usage.run_settings("cifar_noniid")],
                       "The key=value arguments are run settings, applied after this benchmark's own.")
    import flwr.simulation  # noqa: F401 - the driver's imports in a run
    import fedsparse.fl.client_app  # noqa: F401
    import fedsparse.fl.server_app  # noqa: F401

    cfg = load_config("cifar_noniid", ["progress=false", *argv])
    backend = backend_config(cfg)
    ray.init(**backend["init_args"], log_to_driver=False)
    try:
        actors = [IdleClient.options(**backend["client_resources"]).remote()
                  for _ in range(num_actors(cfg))]
        ray.get([a.ready.remote() for a in actors])
        time.sleep(2.0)
        processes = tree_pss(os.getpid())
    finally:
        ray.shutdown()
    total = sum(processes.values())
    for name, pss in sorted(processes.items(), key=lambda kv: -kv[1]):
        print(f"  {pss / 2**20:7.0f} MiB  {name}")
    print(f"{len(actors)} idle client actors, driver and Ray services: "
          f"{total / 2**30:.2f} GiB ({total / 1e9:.2f} GB)")
    print(f"floor_gb={total / 1e9:.3f} floor_gib={total / 2**30:.3f} actors={len(actors)}")


if __name__ == "__main__":
    main(sys.argv[1:])
