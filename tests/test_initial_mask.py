"""`build_initial_mask` (fedsparse/sparse/initial_mask.py) on tiny networks, no Flower: a
hand-computed magnitude mask, whole channels, input selection, given (federated) scores, the
reinit ablation, purity, and `MaskSpec`'s checks."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from torch import nn

from fedsparse.config import config_from_yaml, load_config
from fedsparse.errors import ConfigError
from fedsparse.runner import run_simulation
from fedsparse.sparse.criteria.grasp import GraspOptions
from fedsparse.sparse.criteria.synflow import SynflowOptions
from fedsparse.sparse.initial_mask import build_initial_mask
from fedsparse.sparse.input_features import kept_inputs
from fedsparse.sparse.mask import Mask
from fedsparse.sparse.mask_spec import MaskSpec
from fedsparse.sparse.select import select_mask

torch.set_num_threads(1)


def _mlp() -> nn.Module:
    """Linear(4, 3) -> Linear(3, 2) with hand-set weights."""
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[0.1, -0.9, 0.2, 0.8],
                                            [-0.7, 0.3, -0.05, 0.6],
                                            [0.4, -0.15, 0.5, -0.25]]))
        model[2].weight.copy_(torch.tensor([[0.3, -0.1, 0.6],
                                            [-0.2, 0.5, 0.05]]))
    return model


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_magnitude_mask_equals_hand_computation() -> None:
    model = _mlp()
    before = _state(model)
    spec = MaskSpec(density=0.5, criterion="magnitude", budget="uniform")
    result = build_initial_mask(model, ["0.weight", "2.weight"], spec, seed=0, input_shape=(4,))
    # uniform budget: 6 of 12 and 3 of 6 kept, the largest |w| of each layer
    assert result.mask["0.weight"].tolist() == [[False, True, False, True],
                                                [True, False, False, True],
                                                [True, False, True, False]]
    assert result.mask["2.weight"].tolist() == [[True, False, True], [False, True, False]]
    assert result.input_selection is None and result.weights is None
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())  # pure


def test_channel_granularity_keeps_whole_channels() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 2 * 2, 6))
    with torch.no_grad():
        for c, v in enumerate([0.1, -2.0, 0.5, 1.0]):
            model[0].weight[c].fill_(v)
    spec = MaskSpec(density=0.5, criterion="magnitude", budget="uniform", granularity="channel")
    conv = build_initial_mask(model, ["0.weight"], spec, seed=0, input_shape=(2, 4, 4)).mask["0.weight"]
    # 2 of 4 filters kept: those with the largest summed |w| (channels 1 and 3)
    assert [bool(conv[c].all()) for c in range(4)] == [False, True, False, True]
    assert [bool(conv[c].any()) for c in range(4)] == [False, True, False, True]
    spec = MaskSpec(density=0.3, criterion="snip", budget="erk", granularity="channel")
    batches = [(torch.randn(8, 2, 4, 4), torch.randint(0, 6, (8,)))]
    mask = build_initial_mask(model, ["0.weight", "3.weight"], spec, seed=0, input_shape=(2, 4, 4),
                              batches=batches).mask
    for m in mask.values():  # every row (output channel) is all kept or all pruned
        rows = m.reshape(m.shape[0], -1)
        assert torch.equal(rows.all(dim=1), rows.any(dim=1)) and 0 < int(rows.any(dim=1).sum()) < len(rows)


def test_input_keep_selects_the_inputs_with_the_largest_summed_scores() -> None:
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 5), nn.ReLU(), nn.Linear(5, 3))
    with torch.no_grad():  # column j has |w| = (j + 1) / 16 in every row: inputs 12..15 rank first
        model[1].weight.copy_(torch.arange(1, 17).float().div(16).expand(5, 16)
                              * torch.tensor([1.0, -1.0, 1.0, -1.0, 1.0])[:, None])
    spec = MaskSpec(density=0.5, criterion="magnitude", budget="uniform", input_keep=0.25)
    result = build_initial_mask(model, ["1.weight", "3.weight"], spec, seed=0, input_shape=(1, 4, 4))
    sel = result.input_selection
    assert sel is not None and sel.layer == "1.weight"
    assert sel.kept_index.tolist() == [12, 13, 14, 15]
    assert sel.importance.shape == (4, 4)
    first = result.mask["1.weight"]
    assert not first[:, :12].any() and kept_inputs(first) == 4


def test_given_scores_are_used_and_need_no_batches() -> None:
    model = _mlp()
    g = torch.Generator().manual_seed(3)
    scores = {n: torch.rand(p.shape, generator=g) for n, p in model.named_parameters() if n.endswith("weight")}
    spec = MaskSpec(density=0.4, criterion="snip", budget="erk", scope="global")
    result = build_initial_mask(model, list(scores), spec, seed=0, input_shape=(4,), scores=scores)
    assert result.mask == select_mask(scores, 0.4, scope="global", budget="erk")


def test_reinit_returns_fresh_kept_weights_and_leaves_the_model_alone() -> None:
    model = _mlp()
    before = _state(model)
    seeds: list[int] = []

    def fresh(seed: int) -> nn.Module:
        seeds.append(seed)
        torch.manual_seed(seed)
        return nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))

    spec = MaskSpec(density=0.5, criterion="magnitude", budget="uniform", ablation="reinit")
    result = build_initial_mask(model, ["0.weight", "2.weight"], spec, seed=5, input_shape=(4,),
                                fresh_model=fresh)
    base = build_initial_mask(model, ["0.weight", "2.weight"], MaskSpec(0.5, "magnitude", budget="uniform"),
                              seed=5, input_shape=(4,))
    assert result.mask == base.mask and result.weights is not None and len(seeds) == 1
    new = dict(fresh(seeds[0]).named_parameters())
    for n, m in result.mask.items():
        assert torch.equal(result.weights[n][m], new[n].detach()[m])
        assert torch.equal(result.weights[n][~m], before[n][~m])
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    with pytest.raises(ConfigError, match="fresh_model"):
        build_initial_mask(model, ["0.weight"], spec, seed=5, input_shape=(4,))


def test_mask_spec_checks_and_options() -> None:
    assert MaskSpec(0.5, "grasp").options == GraspOptions(temperature=200.0)
    assert MaskSpec(0.5, "synflow", SynflowOptions(iterations=3)).options.iterations == 3
    with pytest.raises(ConfigError, match="GraspOptions"):
        MaskSpec(0.5, "grasp", SynflowOptions())
    with pytest.raises(ConfigError, match="granularity"):
        MaskSpec(0.5, "snip", granularity="channel", input_keep=0.5)
    with pytest.raises(ConfigError, match="granularity"):
        MaskSpec(0.5, "snip", granularity="rows")
    with pytest.raises(ConfigError, match="scope"):
        MaskSpec(0.5, "snip", scope="net")


def test_spec_from_config_survives_the_wire() -> None:
    """Clients rebuild the config from `wire_yaml`: the criterion's options reach them."""
    cfg = load_config("cifar_noniid", ["criterion=grasp", "criterion_options.temperature=50",
                                       "granularity=channel", "scope=global"])
    spec = MaskSpec.from_config(config_from_yaml(cfg.wire_yaml()))
    assert spec == MaskSpec.from_config(cfg)
    assert spec.options == GraspOptions(temperature=50.0)
    assert (spec.granularity, spec.scope) == ("channel", "global")
    assert "criterion_options" not in load_config("cifar_noniid").wire_yaml()  # default: not sent


@pytest.mark.e2e
@pytest.mark.skipif(not os.environ.get("FEDSPARSE_DATA"), reason="needs FEDSPARSE_DATA (real MNIST)")
def test_fixed_mask_with_channel_granularity_and_client_scored_grasp(tmp_path: Path) -> None:
    """End to end through Flower: round-0 clients score with GraSP at the configured temperature,
    the server keeps whole output channels, and clients train on that mask."""
    args = {"dataset": "mnist", "model": "mnist_net", "num_clients": 4, "clients_per_round": 2,
            "rounds": 1, "local_epochs": 1, "eval_every": 1, "num_actors": 1, "progress": False,
            "strategy": "fixed_mask", "criterion": "grasp", "scoring": "federated",
            "criterion_options.temperature": 200, "granularity": "channel", "sparsity": 0.7,
            "output_dir": str(tmp_path), "name": "channel"}
    run = run_simulation(load_config("cifar_noniid", [f"{k}={v}" for k, v in args.items()]))
    mask = Mask.load(run / "initial_mask.npz")
    for m in mask.values():
        rows = m.reshape(m.shape[0], -1)
        assert torch.equal(rows.all(dim=1), rows.any(dim=1))
    assert 0.2 < mask.density() < 0.4
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["round"] == 1 and rows[-1]["density"] == pytest.approx(mask.density())
