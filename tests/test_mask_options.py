"""The initial mask's options: layer-wise ablations, induced feature selection, the learned and
lottery criteria, parameter/MAC counts, and `init_checkpoint`; on a synthetic dataset, no Flower."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from fedsparse.config import Config, load_config
from fedsparse.data import ImageData, make_split, normalize
from fedsparse.errors import ConfigError
from fedsparse.experiment import Experiment
from fedsparse.fl.strategies.fixed_mask import FixedMask
from fedsparse.fl.strategies.initial_mask import (initial_mask, proxy_batches,
                                                  write_mask_artifacts)
from fedsparse.metrics.run_folder import RunFolder
from fedsparse.models.checkpoint import load_checkpoint, save_checkpoint
from fedsparse.sparse.ablation import invert_scores, shuffle_within_layers
from fedsparse.sparse.cost import model_cost
from fedsparse.sparse.criteria import score
from fedsparse.sparse.criteria.learned import FEATURES, Scorer
from fedsparse.sparse.input_features import kept_inputs
from fedsparse.sparse.mask import Mask
from fedsparse.sparse.select import select_mask

torch.set_num_threads(1)


def _data(side: int = 8, n: int = 240) -> ImageData:
    g = torch.Generator().manual_seed(0)
    y = torch.arange(n) % 10
    x = torch.randint(0, 256, (n, 1, side, side), generator=g, dtype=torch.uint8)
    x[:, 0, 0, :] = (y * 25).to(torch.uint8)[:, None]  # a learnable signal in the first row
    return ImageData("synthetic", [str(c) for c in range(10)], x, y, x[:100].clone(), y[:100].clone())


def _exp(**overrides: object) -> Experiment:
    fields = {"dataset": "mnist", "model": "mlp", "strategy": "fixed_mask", "criterion": "snip",
              "sparsity": 0.9, "budget": "erk", "num_clients": 4, "clients_per_round": 2,
              "score_samples": 64, "split": "iid"}
    fields.update(overrides)
    cfg = Config().with_(**fields)
    data = _data()
    split = make_split("iid", data.train_y.numpy(), data.test_y.numpy(), cfg.data.num_clients, cfg.seed)
    return Experiment(cfg, data, split)


def _mask(**overrides: object) -> tuple[FixedMask, Mask]:
    strategy = FixedMask(_exp(**overrides), torch.device("cpu"), {})
    mask = initial_mask(strategy, None)
    strategy.set_mask(mask)
    return strategy, mask


def _counts(mask: Mask) -> dict[str, int]:
    return {n: int(m.sum()) for n, m in mask.items()}


@pytest.mark.parametrize("criterion", ["snip", "magnitude", "synflow"])
def test_shuffle_keeps_per_layer_counts_and_moves_weights(criterion: str) -> None:
    _, base = _mask(criterion=criterion)
    _, shuffled = _mask(criterion=criterion, mask_ablation="shuffle")
    assert _counts(shuffled) == _counts(base)
    assert shuffled != base


def test_shuffle_stays_inside_allowed_positions() -> None:
    gen = torch.Generator().manual_seed(0)
    mask = Mask({"w": torch.rand(6, 10, generator=gen) < 0.2})
    allowed = {"w": torch.zeros(6, 10, dtype=torch.bool)}
    allowed["w"][:, :5] = True
    out = shuffle_within_layers(mask, gen, allowed)
    assert int(out["w"].sum()) == int(mask["w"].sum())
    assert not out["w"][:, 5:].any()


def test_invert_keeps_the_complement_ranking() -> None:
    strategy, base = _mask()
    _, inverted = _mask(mask_ablation="invert")
    exp = strategy.exp
    scores = score("snip", exp.new_model(), exp.masked_names, proxy_batches(exp),
                   generator=torch.Generator().manual_seed(exp.cfg.seed))
    assert inverted == select_mask(invert_scores(scores), 0.1, scope="layer", budget="erk")
    assert _counts(inverted) == _counts(base)
    for n in base:
        if 0 < int(base[n].sum()) < base[n].numel():  # partly pruned layer
            # the criterion keeps its top ranks, the inverted mask its bottom ranks
            assert scores[n][base[n]].min() >= scores[n][~base[n]].max()
            assert scores[n][inverted[n]].max() <= scores[n][~inverted[n]].min()


def test_invert_scores_leaves_excluded_entries_excluded() -> None:
    s = {"w": torch.tensor([1.0, -2.0, float("-inf")])}
    assert invert_scores(s)["w"].tolist() == [-1.0, 2.0, float("-inf")]


def test_reinit_changes_kept_weights_and_keeps_the_mask() -> None:
    base_strategy, base = _mask()
    strategy, mask = _mask(mask_ablation="reinit")
    assert mask == base
    for n in strategy.masked:
        kept = mask[n]
        assert not torch.equal(strategy.state[n][kept], base_strategy.state[n][kept])
        assert (strategy.state[n][~kept] == 0).all()
        # same distribution family: comparable scale
        ratio = strategy.state[n][kept].std() / base_strategy.state[n][kept].std()
        assert 0.5 < float(ratio) < 2.0
    biases = [n for n in strategy.state if n not in strategy.masked]
    assert all(torch.equal(strategy.state[n], base_strategy.state[n]) for n in biases)


@pytest.mark.parametrize("criterion,scoring", [("snip", "server"), ("synflow", "server"),
                                               ("random", "server")])
def test_input_selection_keeps_exactly_k_inputs(tmp_path: Path, criterion: str, scoring: str) -> None:
    strategy, mask = _mask(criterion=criterion, sparsity=0.5, input_keep=0.25)
    first = strategy.masked[0]
    sel = strategy.input_selection
    k = round(0.25 * 64)
    assert sel.layer == first and sel.kept_index.numel() == k
    assert sel.importance.shape == (8, 8)
    removed = torch.ones(64, dtype=torch.bool)
    removed[sel.kept_index] = False
    assert not mask[first][:, removed].any()       # zero columns for the removed inputs
    assert kept_inputs(mask[first]) == k           # every kept input is still read
    assert (strategy.state[first][:, removed] == 0).all()
    # the masked model ignores removed pixels entirely
    model = strategy.exp.new_model()
    model.load_state_dict(strategy.state, strict=False)
    x = torch.randn(5, 1, 8, 8)
    x2 = x.clone().reshape(5, -1)
    x2[:, removed] = torch.randn(5, int(removed.sum()))
    torch.testing.assert_close(model(x), model(x2.reshape(5, 1, 8, 8)))
    # artifacts: mask, counts with the removed inputs, importance map
    run = RunFolder.create(str(tmp_path), "ifs", 0)
    write_mask_artifacts(strategy, run)
    info = json.loads(run.path_for("initial_mask.json").read_text())
    assert info["inputs_kept"] == k and info["inputs_total"] == 64
    assert info["macs_inputs_removed"] == 300 * k + 300 * 100 + 100 * 10
    assert info["params_active"] == mask.num_active() + 300 + 100 + 10
    assert Mask.load(run.path_for("initial_mask.npz")) == mask
    assert run.path_for("input_importance.png").stat().st_size > 1000
    assert np.load(run.path_for("kept_inputs.npy")).tolist() == sel.kept_index.tolist()


def test_cover_inputs_gives_every_kept_input_a_weight() -> None:
    from fedsparse.sparse.input_features import cover_inputs

    g = torch.Generator().manual_seed(0)
    for shape in [(5, 8), (4, 6, 3, 3)]:
        s = torch.rand(shape, generator=g)
        m = torch.zeros(shape, dtype=torch.bool)
        m[:, 0] = True  # the whole budget on input 0
        kept = torch.tensor([0, 2, 5])
        c = cover_inputs(m, s, kept)
        assert int(c.sum()) == int(m.sum()) and kept_inputs(c) == 3
        reads = c.transpose(0, 1).reshape(shape[1], -1).any(dim=1)
        assert torch.nonzero(reads).flatten().tolist() == [0, 2, 5]


def test_input_selection_config_checks() -> None:
    with pytest.raises(ConfigError, match="input_keep"):
        load_config("cifar_noniid", ["input_keep=0"])
    with pytest.raises(ConfigError, match="keep_first_dense"):
        load_config("cifar_noniid", ["input_keep=0.5", "keep_first_dense=true"])
    with pytest.raises(ConfigError, match="mask_ablation"):
        load_config("cifar_noniid", ["mask_ablation=flip"])


def test_model_cost_counts_by_hand() -> None:
    model = nn.Sequential(nn.Conv2d(2, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 4 * 4, 5))
    w0 = torch.zeros(3, 2, 3, 3, dtype=torch.bool)
    w0[:, 0] = True                         # input channel 1 removed: 27 kept weights
    w3 = torch.zeros(5, 48, dtype=torch.bool)
    w3[0, :10] = True                       # 10 kept weights
    mask = Mask({"0.weight": w0, "3.weight": w3})
    c = model_cost(model, mask, (2, 6, 6))
    assert c["params_total"] == 54 + 3 + 240 + 5
    assert c["params_active"] == 27 + 3 + 10 + 5
    assert c["macs_dense"] == 54 * 16 + 240
    assert c["macs_sparse"] == 27 * 16 + 10
    assert c["macs_inputs_removed"] == 27 * 16 + 240
    assert (c["inputs_total"], c["inputs_kept"]) == (2, 1)


def test_learned_scorer_round_trips_and_scores(tmp_path: Path) -> None:
    torch.manual_seed(0)
    scorer = Scorer((8, 4))
    path = tmp_path / "scorer.npz"
    scorer.save(path, val_mse=0.125)
    loaded = Scorer.load(path)
    feats = torch.randn(50, len(FEATURES))
    torch.testing.assert_close(loaded(feats), scorer(feats), rtol=0, atol=0)
    assert loaded.hidden == (8, 4) and loaded.info["val_mse"] == 0.125
    with np.load(path, allow_pickle=False) as z:  # plain arrays, no pickled objects
        assert all(z[k].dtype != object for k in z.files)
    exp = _exp(criterion="learned", scorer_path=str(path))
    model = exp.new_model()
    scores = score("learned", model, exp.masked_names, proxy_batches(exp), scorer_path=str(path))
    params = dict(model.named_parameters())
    assert all(scores[n].shape == params[n].shape and torch.isfinite(scores[n]).all()
               for n in exp.masked_names)
    strategy, mask = _mask(criterion="learned", scorer_path=str(path))
    assert abs(mask.density() - 0.1) < 0.01


def test_learned_criterion_errors(tmp_path: Path) -> None:
    model = nn.Sequential(nn.Linear(4, 3))
    batch = [(torch.randn(2, 4), torch.tensor([0, 1]))]
    with pytest.raises(ConfigError, match="scorer_path"):
        score("learned", model, ["0.weight"], batch)
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=np.zeros(3))
    with pytest.raises(ConfigError, match="bad.npz"):
        score("learned", model, ["0.weight"], batch, scorer_path=str(bad))
    with pytest.raises(ConfigError, match="scorer_path"):
        load_config("cifar_noniid", ["criterion=learned"])


def test_lottery_scores_rank_the_ticket_first() -> None:
    exp = _exp()
    model = exp.new_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    scores = score("lottery", model, exp.masked_names, proxy_batches(exp),
                   generator=torch.Generator().manual_seed(0), iterations=3,
                   final_density=0.1, epochs=1)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    total = sum(s.numel() for s in scores.values())
    survivors = sum(int((s >= 3).sum()) for s in scores.values())
    assert abs(survivors - 0.1 * total) <= len(scores)
    assert all(float(s.min()) >= 0 and float(s.max()) < 4 for s in scores.values())


def test_init_checkpoint_loads_weights_only(tmp_path: Path) -> None:
    exp = _exp()
    trained = exp.new_model()
    with torch.no_grad():
        for p in trained.parameters():
            p.add_(1.0)
    path = save_checkpoint(trained, tmp_path / "pre.pt")
    exp2 = dataclasses.replace(exp, cfg=exp.cfg.with_(init_checkpoint=str(path)))
    loaded = exp2.new_model()
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(),
                                                 trained.state_dict().values()))
    with pytest.raises(ConfigError, match="does not match"):
        load_checkpoint(nn.Linear(3, 2), path)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="init_checkpoint"):
        load_checkpoint(trained, tmp_path / "junk.pt")
    with pytest.raises(ConfigError, match="init_checkpoint"):
        load_config("cifar_noniid", [f"init_checkpoint={tmp_path / 'missing.pt'}"])


def test_proxy_batches_are_normalised_training_images() -> None:
    exp = _exp()
    x = torch.cat([b[0] for b in proxy_batches(exp)])
    assert x.shape == (64, 1, 8, 8)
    assert torch.isclose(normalize(exp.data.train_x, exp.data.mean, exp.data.std).mean(),
                         torch.tensor(0.0), atol=1e-4)
