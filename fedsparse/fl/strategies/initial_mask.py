"""The initial global mask of sparse strategies: any criterion, scored on the server or federated."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import torch
from flwr.app import ConfigRecord, Message, MessageType
from flwr.serverapp import Grid

from fedsparse.config import Config
from fedsparse.errors import ConfigError
from fedsparse.experiment import Experiment
from fedsparse.fl.payload import decode_state, encode_state
from fedsparse.fl.receive import replies_as_they_arrive
from fedsparse.fl.sampling import sample_clients
from fedsparse.metrics.importance_map import save_importance_map
from fedsparse.metrics.run_folder import RunFolder, to_jsonable
from fedsparse.models import build_model
from fedsparse.models.prunable import first_layer_name
from fedsparse.sparse.ablation import invert_scores, reinit_kept, shuffle_within_layers
from fedsparse.sparse.budgets import layer_budget
from fedsparse.sparse.cost import model_cost
from fedsparse.sparse.criteria import score, synflow_mask
from fedsparse.sparse.input_features import cover_inputs, importance_shape, input_keep_mask
from fedsparse.sparse.mask import Mask
from fedsparse.sparse.select import input_feature_selection, select_mask

SCORE_BATCH = 64


def proxy_batches(exp: Experiment) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """`score_samples` seeded training images standing for a small public set held by the server."""
    cfg, data = exp.cfg, exp.data
    rng = np.random.default_rng([cfg.seed, 7])
    idx = torch.from_numpy(rng.choice(len(data.train_y), size=min(cfg.score_samples, len(data.train_y)),
                                      replace=False))
    x = exp.normalize(data.train_x[idx])
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
    pids = sample_clients(cfg.seed, 0, range(cfg.num_clients), cfg.clients_per_round)
    record = encode_state(strategy.state, [], None, send_positions=False, codec=cfg.codec,
                          value_dtype="float32")
    messages = []
    for pid in pids:
        content = strategy.node_setup.content(pid, {"arrays": record, "config": ConfigRecord({"round": 0})})
        msg = Message(content, dst_node_id=strategy.node_of[pid], message_type=f"{MessageType.QUERY}.score")
        messages.append(msg)
    strategy._record_sent(0, pids, messages, [0] * len(pids))
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
        strategy._record(0, int(metrics["partition-id"]), "up", reply, 0)
        n = float(metrics["num-examples"])
        for name in total:
            total[name] += n * scores[name].double()
        weight += n
    return {n: (t / weight).float() for n, t in total.items()}


def criterion_options(cfg: Config) -> dict[str, Any]:
    """Options the configured criterion reads from the config (the learned scorer's file)."""
    return {"scorer_path": cfg.scorer_path} if cfg.criterion == "learned" else {}


def initial_mask(strategy, grid: Grid) -> Mask:  # noqa: ANN001
    """Choose the starting mask with `criterion` at density 1 - sparsity under the layer budget,
    then apply the input-feature selection (`input_keep` < 1) and the ablation (`mask_ablation`).

    SynFlow prunes iteratively and has no single ranking: `invert` and the input importance use
    its one-shot scores (one SynFlow pass at the dense model); without `invert` the mask is the
    iterative SynFlow mask (restricted to the kept inputs when inputs are selected).
    """
    exp, cfg = strategy.exp, strategy.cfg
    model = exp.new_model()
    names = exp.masked_names
    shape = (exp.data.in_channels, *exp.data.image_size)
    iterative_synflow = cfg.criterion == "synflow" and cfg.mask_ablation != "invert"
    scores: dict[str, torch.Tensor] | None = None
    if cfg.criterion == "synflow":
        if not iterative_synflow or cfg.input_keep < 1:
            scores = score("synflow", model, names, None, input_shape=shape)
    elif cfg.scoring == "federated":
        scores = federated_scores(strategy, grid)
    else:
        gen = torch.Generator().manual_seed(cfg.seed)
        scores = score(cfg.criterion, model, names, proxy_batches(exp), generator=gen,
                       **criterion_options(cfg))
    if scores is not None and cfg.mask_ablation == "invert":
        scores = invert_scores(scores)
    allowed = select_inputs(strategy, model, scores) if cfg.input_keep < 1 else {}
    if iterative_synflow:
        densities = budget_densities(exp, strategy.shapes)
        start = None
        if allowed:
            start = Mask({n: allowed.get(n, torch.ones(strategy.shapes[n], dtype=torch.bool))
                          for n in names})
            densities = {n: min(d, start[n].float().mean().item()) for n, d in densities.items()}
        mask = synflow_mask(model, names, densities, input_shape=shape, mask=start)
    else:
        assert scores is not None
        ranked = {n: s.masked_fill(~allowed[n].to(s.device), float("-inf")) if n in allowed else s
                  for n, s in scores.items()}
        mask = select_mask(ranked, 1.0 - cfg.sparsity, scope="layer", budget=cfg.budget)
        mask = Mask({n: m & allowed[n].to(m.device) if n in allowed else m for n, m in mask.items()})
    if allowed and cfg.mask_ablation != "shuffle":
        assert scores is not None
        sel = strategy.input_selection
        first = sel["layer"]
        covered = cover_inputs(mask[first], scores[first], sel["kept_index"])
        mask = Mask({n: covered.to(m.device) if n == first else m for n, m in mask.items()})
    if cfg.mask_ablation == "shuffle":
        mask = shuffle_within_layers(mask, _stream(cfg.seed, SHUFFLE_STREAM), allowed)
    elif cfg.mask_ablation == "reinit":
        fresh = build_model(cfg.model, exp.data.num_classes, exp.data.in_channels,
                            exp.data.image_size[0], seed=_derived_seed(cfg.seed, REINIT_STREAM))
        strategy.state = reinit_kept(strategy.state, mask,
                                     {n: p.detach() for n, p in fresh.named_parameters()})
    return mask


SHUFFLE_STREAM, REINIT_STREAM = 13, 17


def _derived_seed(seed: int, stream: int) -> int:
    return int(np.random.SeedSequence([seed, stream]).generate_state(1)[0]) % (2**31 - 1)


def _stream(seed: int, stream: int) -> torch.Generator:
    return torch.Generator().manual_seed(_derived_seed(seed, stream))


def select_inputs(strategy, model: torch.nn.Module,  # noqa: ANN001
                  scores: dict[str, torch.Tensor] | None) -> dict[str, torch.Tensor]:
    """Induced feature selection: keep the `input_keep` fraction of the first layer's inputs with
    the largest summed scores; returns {first layer: allowed positions} and stores the kept index
    and the importance map on the strategy (`input_selection`, written by `write_mask_artifacts`)."""
    exp, cfg = strategy.exp, strategy.cfg
    first = first_layer_name(model)
    if first not in exp.masked_names:
        raise ConfigError(f"input_keep={cfg.input_keep} needs the first layer '{first}' masked "
                          "(a sparse strategy and keep_first_dense=false)")
    assert scores is not None
    n_in = strategy.shapes[first][1]
    view = importance_shape(n_in, exp.data.in_channels, exp.data.image_size)
    kept_index, importance = input_feature_selection(scores[first].cpu(), cfg.input_keep, view)
    strategy.input_selection = {"layer": first, "kept_index": kept_index, "importance": importance}
    return {first: input_keep_mask(strategy.shapes[first], kept_index)}


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
                            "mask_ablation": exp.cfg.mask_ablation, "input_keep": exp.cfg.input_keep,
                            **model_cost(exp.new_model(), mask, shape)}
    selection = getattr(strategy, "input_selection", None)
    if selection is not None:
        np.save(run.path_for("kept_inputs.npy"), selection["kept_index"].numpy())
        np.save(run.path_for("input_importance.npy"), selection["importance"].numpy())
        save_importance_map(selection["importance"], selection["kept_index"],
                            run.path_for("input_importance.png"),
                            title=f"{exp.cfg.criterion} ({exp.cfg.scoring}), {exp.data.name}")
        info["inputs_selected"] = int(selection["kept_index"].numel())
    run.path_for("initial_mask.json").write_text(json.dumps(to_jsonable(info), indent=2) + "\n")
