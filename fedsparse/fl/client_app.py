"""The Flower ClientApp: CPU-only masked local training on one partition.

Messages:
- `query.setup` (once per node): carries the resolved config; the node keeps it in its
  `context.state` and answers with its partition id.
- `train`: global values (+ mask positions when the node's copy is out of date); the client
  trains with the mask enforced, readjusts the mask when told (FedDST), and replies with its
  active values (+ positions when its mask differs from the global one) and metrics.
- `query.score`: scores the initial model on local data for federated pruning at initialisation.

Data, split and model are cached per actor process; the last global mask received is kept in the
node's `context.state`, as a real client would keep it.
"""

from __future__ import annotations

import functools
import time

import numpy as np
import torch
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from fedsparse.experiment import Experiment, experiment_from_yaml
from fedsparse.fl.payload import decode_state, encode_state
from fedsparse.train.readjust import readjust_mask
from fedsparse.fl.strategies.base import float_state
from fedsparse.sparse.criteria import score
from fedsparse.sparse.mask import Mask
from fedsparse.train.local import LocalTrainer

app = ClientApp()


@functools.lru_cache(maxsize=2)
def _model(yaml_text: str) -> torch.nn.Module:
    torch.set_num_threads(1)
    return experiment_from_yaml(yaml_text).new_model()


def _setup(context: Context) -> tuple[str, Experiment, int]:
    yaml_text = str(context.state["setup"]["yaml"])
    return yaml_text, experiment_from_yaml(yaml_text), int(context.node_config["partition-id"])


def _stored_mask(context: Context, exp: Experiment, shapes: dict[str, torch.Size]) -> tuple[int, Mask | None]:
    if "mask" not in context.state:
        return -1, None
    bits = context.state["mask"]["bits"].numpy()
    version = int(context.state["mask_version"]["version"])
    flat = np.unpackbits(bits, count=sum(int(np.prod(shapes[n])) for n in exp.masked_names)).astype(bool)
    out, start = {}, 0
    for n in exp.masked_names:
        size = int(np.prod(shapes[n]))
        out[n] = torch.from_numpy(flat[start:start + size].reshape(shapes[n]))
        start += size
    return version, Mask(out)


def _store_mask(context: Context, mask: Mask, version: int) -> None:
    flat = torch.cat([m.reshape(-1) for m in mask.values()]).numpy()
    context.state["mask"] = ArrayRecord({"bits": Array(np.packbits(flat))})
    context.state["mask_version"] = ConfigRecord({"version": version})


def _generator(seed: int, server_round: int, pid: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(np.random.SeedSequence([seed, server_round, pid])
                                             .generate_state(1)[0]))


@app.query("setup")
def setup(msg: Message, context: Context) -> Message:
    """Keep the run's config; report the partition id."""
    context.state["setup"] = ConfigRecord({"yaml": str(msg.content["setup"]["yaml"])})
    return Message(RecordDict({"metrics": MetricRecord(
        {"partition-id": int(context.node_config["partition-id"])})}), reply_to=msg)


@app.train()
def train(msg: Message, context: Context) -> Message:
    """Masked local training on this node's partition."""
    t0 = time.perf_counter()
    yaml_text, exp, pid = _setup(context)
    cfg = exp.cfg
    instr = msg.content["config"]
    server_round, version = int(instr["round"]), int(instr["mask_version"])
    model = _model(yaml_text)
    shapes = {n: t.shape for n, t in float_state(model).items()}
    held_version, held = _stored_mask(context, exp, shapes)
    known = held if held_version == version else None
    state, mask, sent = decode_state(msg.content["arrays"], shapes, exp.masked_names, known,
                                     value_dtype=cfg.value_dtype)
    if sent and mask is not None:
        _store_mask(context, mask, version)
    model.load_state_dict(state, strict=False)
    x, y = exp.client_train(pid)
    gen = _generator(cfg.seed, server_round, pid)
    trainer = LocalTrainer(model, mask, lr=cfg.lr, momentum=cfg.momentum,
                           weight_decay=cfg.weight_decay, batch_size=cfg.batch_size,
                           proximal_mu=float(instr.get("proximal_mu", 0.0)), augment=cfg.augment,
                           double_softmax=cfg.faithful)
    readjust = bool(instr.get("readjust", False)) and mask is not None
    before = cfg.local_epochs - cfg.regrow_train_epochs if readjust else cfg.local_epochs
    loss = trainer.train_epochs(x, y, before, gen)
    new_mask, changes = mask, 0
    if readjust:
        new_mask = readjust_mask(trainer, x, y, mask, float(instr["drop_fraction"]), cfg, gen)
        changes = new_mask.changed(mask)
        trainer.set_mask(new_mask)
        if cfg.regrow_train_epochs:
            loss = trainer.train_epochs(x, y, cfg.regrow_train_epochs, gen)
    send_positions = new_mask is not None and changes > 0
    arrays = encode_state(float_state(model), exp.masked_names, new_mask,
                          send_positions=send_positions, codec=cfg.codec, value_dtype=cfg.value_dtype)
    metrics = MetricRecord({"partition-id": pid, "num-examples": len(y), "train_loss": loss,
                            "mask_changes": changes, "train_time_s": time.perf_counter() - t0})
    return Message(RecordDict({"arrays": arrays, "metrics": metrics}), reply_to=msg)


@app.query("score")
def score_locally(msg: Message, context: Context) -> Message:
    """Score the initial model on local data (federated pruning at initialisation)."""
    yaml_text, exp, pid = _setup(context)
    model = _model(yaml_text)
    shapes = {n: t.shape for n, t in float_state(model).items()}
    state, _, _ = decode_state(msg.content["arrays"], shapes, [], None, value_dtype="float32")
    model.load_state_dict(state, strict=False)
    x, y = exp.client_train(pid)
    batches = [(x[i:i + exp.cfg.batch_size], y[i:i + exp.cfg.batch_size])
               for i in range(0, len(y), exp.cfg.batch_size)]
    scores = score(exp.cfg.criterion, model, exp.masked_names, batches,
                   generator=_generator(exp.cfg.seed, 0, pid))
    arrays = encode_state(scores, [], None, send_positions=False, codec=exp.cfg.codec,
                          value_dtype="float32")
    return Message(RecordDict({"arrays": arrays, "metrics": MetricRecord(
        {"partition-id": pid, "num-examples": len(y)})}), reply_to=msg)
