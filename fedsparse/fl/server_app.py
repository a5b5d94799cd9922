"""The Flower ServerApp: nodes and their setup, the round loop, server-device evaluation, run folder.

The loop drives a `fedsparse` strategy through Flower's Strategy interface (configure_train /
aggregate_train) rather than `Strategy.start`, so that it can sample clients with its own seeded
RNG, evaluate every `eval_every` rounds and append one metrics row per round as it ends.
"""

from __future__ import annotations

import functools
import logging
import time
from datetime import datetime
from typing import Any

import torch
from flwr.app import ConfigRecord, Context
from flwr.serverapp import Grid, ServerApp

from fedsparse.config import Config, load_config
from fedsparse.data import normalize
from fedsparse.errors import ConfigError, DataError
from fedsparse.experiment import Experiment, experiment_from_yaml
from fedsparse.fl.checkpoint import load_checkpoint, save_checkpoint
from fedsparse.fl.node_directory import NodeDirectory
from fedsparse.fl.node_setup import NodeSetup
from fedsparse.fl.receive import replies_as_they_arrive
from fedsparse.fl.run_config import load_args, report_bad_input
from fedsparse.fl.server_threads import clients_waiting, rounds_running
from fedsparse.fl.strategies import STRATEGIES
from fedsparse.fl.strategies.base import SparseFedAvg
from fedsparse.fl.strategies.initial_mask import write_mask_artifacts
from fedsparse.metrics.evaluate import ClientTestSets, evaluate
from fedsparse.metrics.loggers import open_logger
from fedsparse.metrics.plots import make_plots
from fedsparse.metrics.progress import RoundProgress
from fedsparse.metrics.run_folder import NODES_DIR, RunFolder
from fedsparse.metrics.summary import summarize
from fedsparse.prepare import prepare, server_device

log = logging.getLogger("fedsparse")

ROUND_TIMEOUT_S = 3600.0


class ServerEvaluator:
    """Central test accuracy and every client's local-test accuracy from one pass on the device."""

    def __init__(self, exp: Experiment, device: torch.device) -> None:
        data = exp.data
        self.x = data.test_x.to(device)  # uint8, normalized batch by batch (a quarter of the memory)
        mean, std = exp.norm_stats
        self.normalize = functools.partial(normalize, mean=mean, std=std)
        self.y = data.test_y.to(device)
        self.client_test = ClientTestSets([torch.from_numpy(t) for t in exp.split.test],
                                          len(self.y), device)
        self.model = exp.new_model().to(device)

    def __call__(self, state: dict[str, torch.Tensor]) -> dict[str, float]:
        self.model.load_state_dict(state, strict=False)
        with clients_waiting():
            return evaluate(self.model, self.x, self.y, self.client_test, transform=self.normalize)


def _row(strategy: SparseFedAvg, server_round: int, t_round: float, t_start: float) -> dict[str, Any]:
    totals = strategy.ledger.round_totals(server_round)
    cumulative = strategy.ledger.cumulative()
    info = strategy.round_info
    row: dict[str, Any] = {
        "round": server_round,
        "upload_bytes": totals["upload_bytes"],
        "download_bytes": totals["download_bytes"],
        "cumulative_upload_bytes": cumulative["upload_bytes"],
        "cumulative_download_bytes": cumulative["download_bytes"],
        "reference_upload_bytes": totals["reference_upload_bytes"],
        "reference_download_bytes": totals["reference_download_bytes"],
        "cumulative_reference_upload_bytes": cumulative["reference_upload_bytes"],
        "cumulative_reference_download_bytes": cumulative["reference_download_bytes"],
        "upload_bytes_per_client": dict(sorted(totals["upload_bytes_per_client"].items())),
        "download_bytes_per_client": dict(sorted(totals["download_bytes_per_client"].items())),
        "density": strategy.density(),
        "mask_version": strategy.mask_version,
    }
    if strategy.mask is not None:
        row["layer_density"] = strategy.mask.layer_densities()
    for key in ("clients", "train_loss", "mask_changes", "client_mask_changes", "failures",
                "aggregate_s", "client_time_s"):
        if key in info:
            row[key] = info[key]
    row.update(info.get("extra", {}))  # a method's own numbers (fedsparse.fl.strategies.base)
    row["round_time_s"] = time.perf_counter() - t_round
    row["wall_time_s"] = time.perf_counter() - t_start
    return row


def run_server(grid: Grid, cfg: Config, run: RunFolder) -> None:
    """Set up the strategy, then run every round, appending metrics as each one ends.

    Nodes get their setup with their first message (fedsparse.fl.node_setup); which node holds
    which partition is looked up when first needed (fedsparse.fl.node_directory), at the latest
    before round 0's row; where that takes a message to every node, those transfers go to
    summary.json's `node_discovery`, not to the rows."""
    t_start = time.perf_counter()
    exp = experiment_from_yaml(cfg.to_yaml())
    device = server_device(cfg)
    strategy: SparseFedAvg = STRATEGIES.get(cfg.train.strategy).load()(exp, device, {})
    state_dir = str(run.path_for(NODES_DIR).resolve()) if cfg.runtime.checkpoint_every > 0 else None
    # the run's config as `config.yaml` records it: resumed without changed settings, a node's
    # setup is the very text (and size) an uninterrupted run sends
    strategy.node_setup = NodeSetup(cfg.with_(resume=None).wire_yaml(), state_dir)
    nodes = strategy.node_of = NodeDirectory(grid, cfg.data.num_clients)
    first_round, restart = 1, None
    if cfg.runtime.resume is None:
        strategy.initialize(grid)
        write_mask_artifacts(strategy, run)
    else:
        done, restart = _resume(cfg, run, strategy)
        first_round = done + 1
    evaluator = ServerEvaluator(exp, device)
    nodes.resolve()
    if restart is not None:
        _update_restart(run, strategy, restart)
    log.info("server on %s; %d clients, %d per round", device, cfg.data.num_clients, cfg.train.clients_per_round)
    with (RoundProgress(cfg.train.rounds, cfg.runtime.progress, first_round - 1) as progress, rounds_running(),
          open_logger(cfg, run) as logger):
        if restart is None:  # a run resumed from its round-0 checkpoint already has round 0's row
            row = _row(strategy, 0, time.perf_counter(), t_start)
            row.update(evaluator(strategy.eval_state()))
            run.append_metrics(row)
            logger.log(row)
            if cfg.runtime.checkpoint_every > 0:
                save_checkpoint(run, 0, strategy)
        for server_round in range(first_round, cfg.train.rounds + 1):
            t_round = time.perf_counter()
            messages = strategy.configure_train(server_round, None, ConfigRecord(), grid)
            strategy.aggregate_train(server_round,
                                     replies_as_they_arrive(grid, messages, ROUND_TIMEOUT_S))
            row = _row(strategy, server_round, t_round, t_start)
            last = server_round == cfg.train.rounds or _budget_spent(cfg, row)
            if server_round % cfg.runtime.eval_every == 0 or last:
                t_eval = time.perf_counter()
                row.update(evaluator(strategy.eval_state()))
                row["eval_s"] = time.perf_counter() - t_eval
            row["round_time_s"] = time.perf_counter() - t_round
            run.append_metrics(row)
            logger.log(row)
            every = cfg.runtime.checkpoint_every
            if every > 0 and (server_round % every == 0 or last):
                save_checkpoint(run, server_round, strategy)
            if restart is not None:
                _update_restart(run, strategy, restart)
            progress.update(server_round, row)
            if last:
                break
    summary = summarize(run.read_metrics())
    summary["config_hash"] = cfg.hash()  # the run's identity (also atop config.yaml)
    summary["server_device"] = str(device)
    summary["restarts"] = run.read_restarts()
    found = nodes.discovery.cumulative()  # this session's, as each restart asks again
    summary["node_discovery"] = {"upload_bytes": found["upload_bytes"],
                                 "download_bytes": found["download_bytes"]}
    run.write_summary(summary)
    make_plots(run)


def _budget_spent(cfg: Config, row: dict[str, Any]) -> bool:
    """True once the cumulative upload has reached `max_upload_gb` (never when it is unset)."""
    return cfg.comm.max_upload_gb is not None and row["cumulative_upload_bytes"] >= cfg.comm.max_upload_gb * 1e9


def _resume(cfg: Config, run: RunFolder, strategy: SparseFedAvg) -> tuple[int, dict[str, Any]]:
    """Continue `run` from its checkpoint; returns the checkpointed round and this restart's entry
    in `restarts.json`.

    The restarted nodes have lost their setup (and have new node ids). The setup sent to them
    again is the restart's own cost, kept out of the metrics and recorded in the entry, brought up to date after every round (`_update_restart`). Metric rows after the
    checkpointed round (written before the interruption) are dropped and will be written again.
    """
    done, state = load_checkpoint(run.path)
    strategy.load_state_dict(state)
    run.truncate_metrics_after(done)
    entry = {"from_round": done, "at": datetime.now().isoformat(timespec="seconds"),
             "setup_upload_bytes": 0, "setup_download_bytes": 0}
    run.add_restart(entry)
    log.info("resumed %s after round %d", run.path, done)
    return done, entry


def _update_restart(run: RunFolder, strategy: SparseFedAvg, entry: dict[str, Any]) -> None:
    """Rewrite this restart's entry (the last in `restarts.json`) if its setup traffic grew."""
    traffic = strategy.node_setup.resent.cumulative()
    now = {"setup_upload_bytes": traffic["upload_bytes"], "setup_download_bytes": traffic["download_bytes"]}
    if any(entry[k] != v for k, v in now.items()):
        entry.update(now)
        run.replace_last_restart(entry)


def make_server_app(cfg: Config, run: RunFolder) -> ServerApp:
    """A ServerApp bound to an already validated config and run folder (simulation entry)."""
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        run_server(grid, cfg, run)

    return app


app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    """`flwr run .` entry: the settings come from the run config (`fl/run_config.py`). As with
    `python -m simulations.cifar_noniid`, bad input stops it with one line before any work (and
    no run folder), and the split heatmap is written and the run folder printed first."""
    try:
        cfg = load_config(*load_args(context.run_config, grid.run.override_config))
        run = prepare(cfg)
    except (ConfigError, DataError) as e:
        report_bad_input(e)
        raise
    print(f"run folder: {run.path.resolve()}", flush=True)
    run_server(grid, cfg, run)
