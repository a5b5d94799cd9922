import pytest
import torch
from torch import nn

from fedsparse.errors import ConfigError
from fedsparse.sparse.mask import Mask
from fedsparse.sparse.masked_optim import MaskedOptimizer
from fedsparse.sparse.ops import regrow_init
from fedsparse.sparse.prune_grow import RuleInputs, readjust

torch.set_num_threads(1)

NAMES = ["0.weight", "2.weight"]


def make_net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(20, 16), nn.ReLU(), nn.Linear(16, 4))


def random_mask(model: nn.Module, density: float, seed: int) -> Mask:
    g = torch.Generator().manual_seed(seed)
    params = dict(model.named_parameters())
    return Mask({n: torch.rand(params[n].shape, generator=g) < density for n in NAMES})


def train(model, opt, steps: int, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(64, 20, generator=g)
    y = torch.randint(0, 4, (64,), generator=g)
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()


def assert_exactly_masked(model, mask):
    params = dict(model.named_parameters())
    for n, m in mask.items():
        assert torch.all(params[n].detach()[~m] == 0.0), n


def sgd(model):
    return torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-3)


def test_unmasked_sgd_would_revive_weights():
    # the property below is not trivial: plain SGD with momentum moves pruned weights
    model = make_net()
    mask = random_mask(model, 0.3, seed=1)
    mask.apply(model)
    train(model, sgd(model), 5, seed=2)
    params = dict(model.named_parameters())
    assert any(bool((params[n].detach()[~m] != 0).any()) for n, m in mask.items())


def test_sgd_momentum_weight_decay_keeps_pruned_exactly_zero():
    model = make_net()
    mask = random_mask(model, 0.3, seed=1)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = MaskedOptimizer(sgd(model), model, mask)
    train(model, opt, 100, seed=2)
    assert_exactly_masked(model, mask)
    params = dict(model.named_parameters())
    for n, m in mask.items():
        assert not torch.equal(params[n].detach()[m], before[n][m])  # active weights trained
        assert torch.all(opt.optimizer.state[params[n]]["momentum_buffer"][~m] == 0.0)


@pytest.mark.parametrize("make_opt", ["sgd", "adam", "adamw"])
def test_mask_change_mid_training(make_opt):
    model = make_net()
    params = dict(model.named_parameters())
    inner = {
        "sgd": lambda: sgd(model),
        "adam": lambda: torch.optim.Adam(model.parameters(), lr=1e-2, weight_decay=1e-3),
        "adamw": lambda: torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=1e-3),
    }[make_opt]()
    mask = random_mask(model, 0.3, seed=1)
    opt = MaskedOptimizer(inner, model, mask)
    train(model, opt, 50, seed=2)
    assert_exactly_masked(model, mask)

    growth = {n: torch.rand(params[n].shape) for n in NAMES}
    new_mask = readjust(mask, RuleInputs(weights=params, loss_gradients=lambda: growth), 0.3).mask
    assert new_mask.changed(mask) > 0
    regrow_init(model, mask, new_mask)
    opt.set_mask(new_mask)
    assert opt.mask is new_mask
    for n, m in new_mask.items():
        for value in inner.state[params[n]].values():
            if value.shape == m.shape:
                assert torch.all(value[~m] == 0.0)
    train(model, opt, 50, seed=3)
    assert_exactly_masked(model, new_mask)
    grown = {n: new_mask[n] & ~mask[n] for n in NAMES}
    assert any(bool((params[n].detach()[grown[n]] != 0).any()) for n in NAMES)  # grown ones train


def test_closure_step_and_state_dict_roundtrip():
    model = make_net()
    mask = random_mask(model, 0.5, seed=4)
    opt = MaskedOptimizer(sgd(model), model, mask)
    x, y = torch.randn(8, 20), torch.randint(0, 4, (8,))

    def closure():
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        return loss

    for _ in range(10):
        assert opt.step(closure) is not None
    assert_exactly_masked(model, mask)
    state = opt.state_dict()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)  # pollute the weights, then re-mask through set_mask on load
    opt.load_state_dict(state)
    assert_exactly_masked(model, mask)
    assert opt.param_groups is opt.optimizer.param_groups


def test_unknown_mask_name():
    model = make_net()
    with pytest.raises(ConfigError, match="nope"):
        MaskedOptimizer(sgd(model), model, Mask({"nope": torch.ones(2, dtype=torch.bool)}))
