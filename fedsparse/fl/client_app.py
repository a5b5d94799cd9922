"""The Flower ClientApp: masked local training on one partition, on `client_device`.

Messages:
- the first message a node gets carries its setup, the record `setup`: the resolved config (and,
  when the server checkpoints, where nodes keep their state); the node keeps it in its
  `context.state` (fedsparse.fl.node_setup).
- `query.partition`: answered with the node's partition id, on engines that do not tell the server
  which node holds which partition (fedsparse.fl.node_directory).
- `train`: global values (+ mask positions when the node's copy is out of date, + a method's own
  `extra.*` arrays); the strategy's client step (`StrategyEntry.client`: by default, training with
  the mask enforced and readjusting it when told, as FedDST) replies with its active values
  (+ positions when its mask differs from the global one, + its own arrays) and metrics. A
  message with a negative `mask_version` carries a method's stage mask, not the global one (e.g.
  a round-0 search): the node does not keep it.
- `query.score`: scores the initial model on local data for federated pruning at initialisation.

Data, split and model are cached per actor process; the last global mask received is kept by the
node, as a real client would keep it: on its own disk when the server checkpoints (so it survives a
restart of the run), else in Flower's `context.state` (fedsparse.fl.node_state). A client chosen by
`client_failure_rate` raises after receiving its train message (fedsparse.fl.faults).
"""

from __future__ import annotations

import functools
import time

import torch
from flwr.app import ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from fedsparse.experiment import Experiment, experiment_from_yaml
from fedsparse.fl import faults
from fedsparse.fl.node_setup import SETUP
from fedsparse.fl.node_state import ContextMaskStore, DiskMaskStore, MaskStore, node_folder
from fedsparse.fl.payload import decode_extras, decode_masks, decode_state, encode_state, float_state
from fedsparse.fl.strategies.registry import STRATEGIES
from fedsparse.logs import quiet_routine
from fedsparse.sparse.mask import Mask
from fedsparse.sparse.mask_spec import MaskSpec
from fedsparse.train.client_update import client_generator

quiet_routine()  # in each client actor: Flower's routine shutdown notice only at log_level=debug
app = ClientApp()


@functools.lru_cache(maxsize=2)
def _model(yaml_text: str) -> torch.nn.Module:
    torch.set_num_threads(1)
    return experiment_from_yaml(yaml_text).new_model()


def _setup(msg: Message, context: Context) -> tuple[str, Experiment, int]:
    """(config YAML, experiment, partition id) of this node; the setup comes with the node's first
    message and is kept in `context.state` for the next ones."""
    if SETUP in msg.content:
        context.state[SETUP] = ConfigRecord(dict(msg.content[SETUP]))  # yaml (+ state_dir)
    elif SETUP not in context.state:
        raise RuntimeError("this node has no setup: a node's first message must carry it")
    yaml_text = str(context.state[SETUP]["yaml"])
    return yaml_text, experiment_from_yaml(yaml_text), int(context.node_config["partition-id"])


def _mask_store(context: Context, exp: Experiment, pid: int) -> MaskStore:
    """The node's own disk when the server runs with checkpoints (it sends `state_dir`), else
    Flower's `context.state` (see fedsparse.fl.node_state)."""
    setup = context.state[SETUP]
    if "state_dir" in setup:
        own = context.node_config.get("state-dir")
        folder = node_folder(str(setup["state_dir"]), str(own) if own else None, pid)
        return DiskMaskStore(folder, exp.cfg.runtime.checkpoint_every)
    return ContextMaskStore(context.state)


def _held_mask(store: MaskStore, server_round: int, version: int, exp: Experiment,
               shapes: dict[str, torch.Size]) -> Mask | None:
    """The global mask this node holds, if it is the server's current `version`."""
    held = store.load(server_round) if exp.masked_names else None
    if held is None or held[0] != version:
        return None
    return decode_masks(held[1], shapes, exp.masked_names)


@app.query("partition")
def partition(msg: Message, context: Context) -> Message:
    """Report this node's partition id."""
    return Message(RecordDict({"metrics": MetricRecord(
        {"partition-id": int(context.node_config["partition-id"])})}), reply_to=msg)


@app.train()
def train(msg: Message, context: Context) -> Message:
    """Masked local training on this node's partition."""
    t0 = time.perf_counter()
    yaml_text, exp, pid = _setup(msg, context)
    cfg = exp.cfg
    instr = msg.content["config"]
    server_round, version = int(instr["round"]), int(instr["mask_version"])
    model = _model(yaml_text).to(cfg.runtime.client_device)  # once per actor; a no-op on the CPU
    shapes = {n: t.shape for n, t in float_state(model, copy=False).items()}
    store = _mask_store(context, exp, pid)
    known = _held_mask(store, server_round, version, exp, shapes)
    state, mask, sent = decode_state(msg.content["arrays"], shapes, exp.masked_names, known,
                                     value_dtype=cfg.comm.value_dtype)
    if sent and mask is not None and version >= 0:
        store.save(server_round, version, msg.content["arrays"])
    if faults.fails(cfg.seed, server_round, pid, cfg.runtime.client_failure_rate):
        raise faults.InjectedFailure(f"client {pid} failed in round {server_round} "
                                     f"(client_failure_rate={cfg.runtime.client_failure_rate})")
    model.load_state_dict(state, strict=False)
    result = STRATEGIES.get(cfg.train.strategy).client().train(
        exp, model, mask, pid, server_round, dict(instr), decode_extras(msg.content["arrays"]))
    arrays = encode_state(float_state(model, copy=False), exp.masked_names, result.mask,  # to CPU
                          send_positions=result.mask_changes > 0, codec=cfg.comm.codec,
                          value_dtype=cfg.comm.value_dtype, extras=result.upload)
    metrics = MetricRecord({**result.metrics, "partition-id": pid, "num-examples": result.num_examples,
                            "train_loss": result.train_loss, "mask_changes": result.mask_changes,
                            "train_time_s": time.perf_counter() - t0})
    return Message(RecordDict({"arrays": arrays, "metrics": metrics}), reply_to=msg)


@app.query("score")
def score_locally(msg: Message, context: Context) -> Message:
    """Score the initial model on local data (federated pruning at initialisation)."""
    yaml_text, exp, pid = _setup(msg, context)
    model = _model(yaml_text).to(exp.cfg.runtime.client_device)
    shapes = {n: t.shape for n, t in float_state(model, copy=False).items()}
    state, _, _ = decode_state(msg.content["arrays"], shapes, [], None, value_dtype="float32")
    model.load_state_dict(state, strict=False)
    x, y = (t.to(exp.cfg.runtime.client_device) for t in exp.client_train(pid))
    batches = [(x[i:i + exp.cfg.train.batch_size], y[i:i + exp.cfg.train.batch_size])
               for i in range(0, len(y), exp.cfg.train.batch_size)]
    scores = MaskSpec.from_config(exp.cfg).score(model, exp.masked_names, batches,
                                                 generator=client_generator(exp.cfg.seed, 0, pid))
    arrays = encode_state(scores, [], None, send_positions=False, codec=exp.cfg.comm.codec,  # to CPU
                          value_dtype="float32")
    return Message(RecordDict({"arrays": arrays, "metrics": MetricRecord(
        {"partition-id": pid, "num-examples": len(y)})}), reply_to=msg)
