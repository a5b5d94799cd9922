import pytest
import torch
from torch import nn

from fedsparse.errors import ConfigError
from fedsparse.sparse.budgets import layer_budget
from fedsparse.sparse.lottery import iterative_magnitude_pruning
from fedsparse.sparse.mask import Mask
from fedsparse.sparse.masked_optim import MaskedOptimizer

torch.set_num_threads(1)

NAMES = ["0.weight", "2.weight"]


def make_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(10, 8), nn.ReLU(), nn.Linear(8, 2))


def train_fn(model: nn.Module, mask: Mask) -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(32, 10, generator=g)
    y = (x[:, 0] > 0).long()
    opt = MaskedOptimizer(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), model, mask)
    for _ in range(10):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()


@pytest.mark.parametrize("scope", ["global", "layer"])
def test_imp_reaches_density_and_survival_is_consistent(scope):
    model = make_net()
    init = {k: v.clone() for k, v in model.state_dict().items()}
    iterations, final = 3, 0.2
    mask, survival = iterative_magnitude_pruning(
        model, NAMES, train_fn, final, iterations, scope=scope, budget="erk"
    )
    total = mask.numel()  # 80 + 16 = 96
    assert mask.num_active() == round(final * total)
    if scope == "layer":
        kept = layer_budget("erk", {n: mask[n].shape for n in NAMES}, final)
        assert {n: int(m.sum()) for n, m in mask.items()} == kept
    for n in NAMES:
        s = survival[n]
        assert s.shape == mask[n].shape and s.dtype == torch.long
        assert int(s.min()) >= 0 and int(s.max()) <= iterations
        assert torch.equal(s == iterations, mask[n])  # final survivors survived every round
        assert torch.all(s[~mask[n]] < iterations)
    # geometric schedule: after round i, round(final ** (i / iterations) * total) weights survive
    if scope == "global":
        for i in range(1, iterations + 1):
            alive = sum(int((survival[n] >= i).sum()) for n in NAMES)
            assert alive == round(final ** (i / iterations) * total)
    # rewound: survivors at their initial values, pruned at zero, biases at init
    state = model.state_dict()
    for n in NAMES:
        assert torch.equal(state[n][mask[n]], init[n][mask[n]])
        assert torch.all(state[n][~mask[n]] == 0.0)
    assert torch.equal(state["0.bias"], init["0.bias"])


def test_imp_prunes_by_trained_magnitude_and_uses_rewind_state():
    model = make_net()
    rewind = {k: torch.full_like(v, 0.5) for k, v in model.state_dict().items()}

    def grow_first_column(m: nn.Module, mask: Mask) -> None:
        with torch.no_grad():
            m[0].weight[:, 0] = 100.0  # make these the largest magnitudes after "training"
            mask.apply(m)

    mask, survival = iterative_magnitude_pruning(
        model, ["0.weight"], grow_first_column, 0.1, 2, rewind_state=rewind
    )
    assert mask["0.weight"][:, 0].all() and int(mask["0.weight"].sum()) == 8
    w = model[0].weight.detach()
    assert torch.all(w[mask["0.weight"]] == 0.5) and torch.all(w[~mask["0.weight"]] == 0.0)
    assert torch.all(model[2].weight.detach() == 0.5)  # unmasked layer rewound too
    assert torch.all(survival["0.weight"][:, 0] == 2)


def test_imp_validation():
    with pytest.raises(ConfigError):
        iterative_magnitude_pruning(make_net(), NAMES, train_fn, 0.0, 3)
    with pytest.raises(ConfigError):
        iterative_magnitude_pruning(make_net(), NAMES, train_fn, 0.5, 0)
    with pytest.raises(ConfigError):
        iterative_magnitude_pruning(make_net(), NAMES, train_fn, 0.5, 2, scope="local")
