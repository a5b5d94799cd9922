"""The federated side of the initial global mask: the server's proxy set, the round-0 score
exchange with clients (bytes recorded in the ledger), and the mask's run-folder artifacts. The mask
itself is built by fedsparse/sparse/initial_mask.py."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from flwr.app import ConfigRecord, Message, MessageType
from flwr.serverapp import Grid

from fedsparse.experiment import Experiment
from fedsparse.fl.payload import decode_state, encode_state
from fedsparse.fl.receive import replies_as_they_arrive
from fedsparse.fl.sampling import sample_clients
from fedsparse.metrics.importance_map import save_importance_map
from fedsparse.metrics.run_folder import RunFolder, to_jsonable
from fedsparse.models import build_model
from fedsparse.sparse.cost import model_cost
from fedsparse.sparse.initial_mask import build_initial_mask
from fedsparse.sparse.mask import Mask
from fedsparse.sparse.mask_spec import MaskSpec

SCORE_BATCH = 64


def proxy_batches(exp: Experiment) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """`score_samples` seeded training images standing for a small public set held by the server."""
    cfg, data = exp.cfg, exp.data
    rng = np.random.default_rng([cfg.seed, 7])
    idx = torch.from_numpy(rng.choice(len(data.train_y), size=min(cfg.mask.score_samples, len(data.train_y)),
                                      replace=False))
    x = exp.normalize(data.train_x[idx])
    y = data.train_y[idx]
    return [(x[i:i + SCORE_BATCH], y[i:i + SCORE_BATCH]) for i in range(0, len(y), SCORE_BATCH)]


def federated_scores(strategy, grid: Grid) -> dict[str, torch.Tensor]:  # noqa: ANN001
    """Round 0: sampled clients score the initial model on their own data; the server averages
    the scores weighted by sample counts. Both transfers are recorded in the ledger."""
    cfg = strategy.cfg
    pids = sample_clients(cfg.seed, 0, range(cfg.data.num_clients), cfg.train.clients_per_round)
    record = encode_state(strategy.state, [], None, send_positions=False, codec=cfg.comm.codec,
                          value_dtype="float32")
    messages = []
    for pid in pids:
        content = strategy.node_setup.content(pid, {"arrays": record, "config": ConfigRecord({"round": 0})})
        msg = Message(content, dst_node_id=strategy.node_of[pid], message_type=f"{MessageType.QUERY}.score")
        messages.append(msg)
    strategy.record_sent(0, pids, messages, [0] * len(pids))
    shapes = {n: strategy.shapes[n] for n in strategy.masked}
    total: dict[str, torch.Tensor] = {n: torch.zeros(s, dtype=torch.float64) for n, s in shapes.items()}
    weight = 0.0
    for reply in sorted(replies_as_they_arrive(grid, messages), key=lambda m: int(m.content["metrics"]["partition-id"])
                        if not m.has_error() else -1):
        if reply.has_error():
            raise RuntimeError(f"federated scoring failed on a client: {reply.error.reason}")
        metrics = reply.content["metrics"]
        strategy.node_setup.confirm(int(metrics["partition-id"]))
        scores, _, _ = decode_state(reply.content["arrays"], shapes, [], None, value_dtype="float32")
        strategy.record_received(0, int(metrics["partition-id"]), reply, 0)
        n = float(metrics["num-examples"])
        for name in total:
            total[name] += n * scores[name].double()
        weight += n
    return {n: (t / weight).float() for n, t in total.items()}


def initial_mask(strategy, grid: Grid, counts: Mapping[str, int] | None = None) -> Mask:  # noqa: ANN001
    """The strategy's starting mask (`fedsparse.sparse.initial_mask.build_initial_mask` with the
    run's `MaskSpec`, or the method's own per-layer `counts`), scored on the server's proxy set
    or, with `scoring=federated`, by the round-0 clients. Adopts the reinit ablation's weights and
    keeps the input selection on the strategy (`input_selection`, written by
    `write_mask_artifacts`)."""
    exp, cfg = strategy.exp, strategy.cfg
    spec = MaskSpec.from_config(cfg)
    federated = cfg.mask.scoring == "federated" and spec.scores_data
    data = exp.data

    def fresh_model(seed: int) -> torch.nn.Module:
        return build_model(cfg.model.model, data.num_classes, data.in_channels, data.image_size[0], seed=seed)

    result = build_initial_mask(
        exp.new_model(), exp.masked_names, spec, cfg.seed, (data.in_channels, *data.image_size),
        batches=None if federated or not spec.scores_data else proxy_batches(exp),
        scores=federated_scores(strategy, grid) if federated else None, fresh_model=fresh_model,
        counts=counts)
    if result.weights is not None:
        strategy.state.update({n: w.to(strategy.device) for n, w in result.weights.items()})
    strategy.input_selection = result.input_selection
    return result.mask


def write_mask_artifacts(strategy, run: RunFolder) -> None:  # noqa: ANN001
    """Into the run folder: `initial_mask.npz` (the global mask), `initial_mask.json` (realised
    density, parameters, MACs and kept inputs counted with `sparse/cost.py`) and, with input
    selection, `kept_inputs.npy`, `input_importance.npy` and `input_importance.png`."""
    if strategy.mask is None:
        return
    exp = strategy.exp
    mask = strategy.mask.to("cpu")
    mask.save(run.path_for("initial_mask.npz"))
    shape = (exp.data.in_channels, *exp.data.image_size)
    info: dict[str, Any] = {"density": mask.density(), "layer_density": mask.layer_densities(),
                            "mask_ablation": exp.cfg.mask.mask_ablation, "input_keep": exp.cfg.mask.input_keep,
                            **model_cost(exp.new_model(), mask, shape)}
    selection = strategy.input_selection
    if selection is not None:
        np.save(run.path_for("kept_inputs.npy"), selection.kept_index.numpy())
        np.save(run.path_for("input_importance.npy"), selection.importance.numpy())
        save_importance_map(selection.importance, selection.kept_index,
                            run.path_for("input_importance.png"),
                            title=f"{exp.cfg.mask.criterion} ({exp.cfg.mask.scoring}), {exp.data.name}")
        info["inputs_selected"] = int(selection.kept_index.numel())
    run.path_for("initial_mask.json").write_text(json.dumps(to_jsonable(info), indent=2) + "\n")
