"""The initial global mask of sparse strategies: any criterion, scored on the server or federated."""

from __future__ import annotations

import numpy as np
import torch
from flwr.app import ConfigRecord, Message, MessageType, RecordDict
from flwr.serverapp import Grid

from fedsparse.data import normalize
from fedsparse.experiment import Experiment
from fedsparse.fl.payload import decode_state, encode_state
from fedsparse.fl.sampling import sample_clients
from fedsparse.sparse.budgets import layer_budget
from fedsparse.sparse.criteria import score, synflow_mask
from fedsparse.sparse.mask import Mask
from fedsparse.sparse.select import select_mask

SCORE_BATCH = 64


def proxy_batches(exp: Experiment) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """`score_samples` seeded training images standing for a small public set held by the server."""
    cfg, data = exp.cfg, exp.data
    rng = np.random.default_rng([cfg.seed, 7])
    idx = torch.from_numpy(rng.choice(len(data.train_y), size=min(cfg.score_samples, len(data.train_y)),
                                      replace=False))
    x = normalize(data.train_x[idx], data.mean, data.std)
    y = data.train_y[idx]
    return [(x[i:i + SCORE_BATCH], y[i:i + SCORE_BATCH]) for i in range(0, len(y), SCORE_BATCH)]


def budget_densities(exp: Experiment, shapes: dict[str, torch.Size]) -> dict[str, float]:
    counts = layer_budget(exp.cfg.budget, {n: shapes[n] for n in exp.masked_names},
                          1.0 - exp.cfg.sparsity)
    return {n: counts[n] / int(np.prod(shapes[n])) for n in counts}


def federated_scores(strategy, grid: Grid) -> dict[str, torch.Tensor]:  # noqa: ANN001
    """Round 0: sampled clients score the initial model on their own data; the server averages
    the scores weighted by sample counts. Both transfers are recorded in the ledger."""
    cfg = strategy.cfg
    pids = sample_clients(cfg.seed, 0, sorted(strategy.node_of), cfg.clients_per_round)
    record = encode_state(strategy.state, [], None, send_positions=False, codec=cfg.codec,
                          value_dtype="float32")
    messages = []
    for pid in pids:
        msg = Message(RecordDict({"arrays": record, "config": ConfigRecord({"round": 0})}),
                      dst_node_id=strategy.node_of[pid], message_type=f"{MessageType.QUERY}.score")
        strategy._record(0, pid, "down", msg, 0)
        messages.append(msg)
    shapes = {n: strategy.shapes[n] for n in strategy.masked}
    total: dict[str, torch.Tensor] = {n: torch.zeros(s, dtype=torch.float64) for n, s in shapes.items()}
    weight = 0.0
    for reply in sorted(grid.send_and_receive(messages), key=lambda m: int(m.content["metrics"]["partition-id"])
                        if not m.has_error() else -1):
        if reply.has_error():
            raise RuntimeError(f"federated scoring failed on a client: {reply.error.reason}")
        metrics = reply.content["metrics"]
        scores, _, _ = decode_state(reply.content["arrays"], shapes, [], None, value_dtype="float32")
        strategy._record(0, int(metrics["partition-id"]), "up", reply, 0)
        n = float(metrics["num-examples"])
        for name in total:
            total[name] += n * scores[name].double()
        weight += n
    return {n: (t / weight).float() for n, t in total.items()}


def initial_mask(strategy, grid: Grid) -> Mask:  # noqa: ANN001
    """Choose the starting mask with `criterion` at density 1 - sparsity under the layer budget."""
    exp, cfg = strategy.exp, strategy.cfg
    model = exp.new_model()
    names = exp.masked_names
    if cfg.criterion == "synflow":
        shape = (exp.data.in_channels, *exp.data.image_size)
        return synflow_mask(model, names, budget_densities(exp, strategy.shapes), input_shape=shape)
    if cfg.scoring == "federated":
        scores = federated_scores(strategy, grid)
    else:
        gen = torch.Generator().manual_seed(cfg.seed)
        scores = score(cfg.criterion, model, names, proxy_batches(exp), generator=gen)
    return select_mask(scores, 1.0 - cfg.sparsity, scope="layer", budget=cfg.budget)
