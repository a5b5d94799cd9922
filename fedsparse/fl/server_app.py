"""The Flower ServerApp: node discovery, the round loop, server-device evaluation, run folder.

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
from flwr.app import ConfigRecord, Context, Message, MessageType, RecordDict
from flwr.serverapp import Grid, ServerApp

from fedsparse.comm import CommLedger
from fedsparse.config import Config, load_config
from fedsparse.data import normalize
from fedsparse.errors import ConfigError, DataError
from fedsparse.experiment import Experiment, experiment_from_yaml
from fedsparse.fl.checkpoint import load_checkpoint, save_checkpoint
from fedsparse.fl.receive import replies_as_they_arrive
from fedsparse.fl.run_config import load_args, report_bad_input
from fedsparse.fl.server_threads import clients_waiting, rounds_running
from fedsparse.fl.strategies import STRATEGIES
from fedsparse.fl.strategies.base import SparseFedAvg
from fedsparse.fl.strategies.initial_mask import write_mask_artifacts
from fedsparse.fl.wire import message_bytes, outgoing_bytes
from fedsparse.metrics.evaluate import ClientTestSets, evaluate
from fedsparse.metrics.loggers import open_logger
from fedsparse.metrics.plots import make_plots
from fedsparse.metrics.progress import RoundProgress
from fedsparse.metrics.run_folder import NODES_DIR, RunFolder
from fedsparse.metrics.summary import summarize

log = logging.getLogger("fedsparse")

NODE_WAIT_S = 600.0
ROUND_TIMEOUT_S = 3600.0


def server_device(cfg: Config) -> torch.device:
    """cuda when available (or asked for), else cpu."""
    if cfg.server_device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("server_device='cuda' but no CUDA device is visible; use auto or cpu")
    if cfg.server_device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(cfg.server_device)


def discover_nodes(grid: Grid, cfg: Config, ledger_record: Any,
                   state_dir: str | None = None) -> dict[int, int]:
    """Send the config (and, with checkpoints, where nodes keep their state) to every node once
    (`query.setup`); return partition id -> node id."""
    deadline = time.monotonic() + NODE_WAIT_S
    while len(node_ids := list(grid.get_node_ids())) < cfg.num_clients:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(node_ids)} of num_clients={cfg.num_clients} nodes connected")
        time.sleep(0.5)
    fields = {"yaml": cfg.to_yaml(), **({"state_dir": state_dir} if state_dir else {})}
    setup = RecordDict({"setup": ConfigRecord(fields)})
    messages = [Message(setup, dst_node_id=nid, message_type=f"{MessageType.QUERY}.setup")
                for nid in node_ids]
    down = dict(zip(node_ids, outgoing_bytes(messages)))
    node_of: dict[int, int] = {}
    for reply in replies_as_they_arrive(grid, messages, ROUND_TIMEOUT_S):
        if reply.has_error():
            raise RuntimeError(f"a node failed its setup: {reply.error.reason}")
        pid = int(reply.content["metrics"]["partition-id"])
        node_of[pid] = reply.metadata.src_node_id
        ledger_record(0, pid, "down", down[reply.metadata.src_node_id])
        ledger_record(0, pid, "up", message_bytes(reply))
    if sorted(node_of) != list(range(cfg.num_clients)):
        raise RuntimeError(f"nodes report partition ids {sorted(node_of)[:10]}...; expected "
                           f"0..{cfg.num_clients - 1} (start one node per partition)")
    return node_of


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
    row["round_time_s"] = time.perf_counter() - t_round
    row["wall_time_s"] = time.perf_counter() - t_start
    return row


def run_server(grid: Grid, cfg: Config, run: RunFolder) -> None:
    """Set up nodes and strategy, then run every round, appending metrics as each one ends."""
    t_start = time.perf_counter()
    exp = experiment_from_yaml(cfg.to_yaml())
    device = server_device(cfg)
    strategy: SparseFedAvg = STRATEGIES.get(cfg.strategy)(exp, device, {})
    state_dir = str(run.path_for(NODES_DIR).resolve()) if cfg.checkpoint_every > 0 else None
    first_round = 1
    if cfg.resume is None:
        strategy.node_of.update(discover_nodes(grid, cfg, strategy.ledger.record, state_dir))
        strategy.initialize(grid)
        write_mask_artifacts(strategy, run)
    else:
        first_round = 1 + _resume(grid, cfg, run, strategy, state_dir)
    evaluator = ServerEvaluator(exp, device)
    log.info("server on %s; %d clients, %d per round", device, cfg.num_clients, cfg.clients_per_round)
    with (RoundProgress(cfg.rounds, cfg.progress, first_round - 1) as progress, rounds_running(),
          open_logger(cfg, run) as logger):
        if first_round == 1:
            row = _row(strategy, 0, time.perf_counter(), t_start)
            row.update(evaluator(strategy.state))
            run.append_metrics(row)
            logger.log(row)
            if cfg.checkpoint_every > 0:
                save_checkpoint(run, 0, strategy)
        for server_round in range(first_round, cfg.rounds + 1):
            t_round = time.perf_counter()
            messages = strategy.configure_train(server_round, None, ConfigRecord(), grid)
            strategy.aggregate_train(server_round,
                                     replies_as_they_arrive(grid, messages, ROUND_TIMEOUT_S))
            row = _row(strategy, server_round, t_round, t_start)
            last = server_round == cfg.rounds or _budget_spent(cfg, row)
            if server_round % cfg.eval_every == 0 or last:
                t_eval = time.perf_counter()
                row.update(evaluator(strategy.state))
                row["eval_s"] = time.perf_counter() - t_eval
            row["round_time_s"] = time.perf_counter() - t_round
            run.append_metrics(row)
            logger.log(row)
            every = cfg.checkpoint_every
            if every > 0 and (server_round % every == 0 or last):
                save_checkpoint(run, server_round, strategy)
            progress.update(server_round, row)
            if last:
                break
    summary = summarize(run.read_metrics())
    summary["server_device"] = str(device)
    summary["restarts"] = run.read_restarts()
    run.write_summary(summary)
    make_plots(run)


def _budget_spent(cfg: Config, row: dict[str, Any]) -> bool:
    """True once the cumulative upload has reached `max_upload_gb` (never when it is unset)."""
    return cfg.max_upload_gb is not None and row["cumulative_upload_bytes"] >= cfg.max_upload_gb * 1e9


def _resume(grid: Grid, cfg: Config, run: RunFolder, strategy: SparseFedAvg,
            state_dir: str | None) -> int:
    """Continue `run` from its checkpoint; returns the checkpointed round.

    The nodes are set up again (new node ids); that setup traffic is a restart's own cost, kept
    out of the metrics (round 0 stays as it was) and recorded in `restarts.json` / summary.json.
    Metric rows after the checkpointed round (written before the interruption) are dropped and
    will be written again.
    """
    done, state = load_checkpoint(run.path)
    setup = CommLedger()
    strategy.node_of.update(discover_nodes(grid, cfg, setup.record, state_dir))
    strategy.load_state_dict(state)
    run.truncate_metrics_after(done)
    traffic = setup.cumulative()
    run.add_restart({"from_round": done, "at": datetime.now().isoformat(timespec="seconds"),
                     "setup_upload_bytes": traffic["upload_bytes"],
                     "setup_download_bytes": traffic["download_bytes"]})
    log.info("resumed %s after round %d", run.path, done)
    return done


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
    from fedsparse.runner import prepare

    try:
        cfg = load_config(*load_args(context.run_config, grid.run.override_config))
        run = prepare(cfg)
    except (ConfigError, DataError) as e:
        report_bad_input(e)
        raise
    print(f"run folder: {run.path.resolve()}", flush=True)
    run_server(grid, cfg, run)
