import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from fedsparse.errors import ConfigError
from fedsparse.sparse.mask import Mask
from fedsparse.sparse.ops import grow_highest, prune_lowest, regrow_init

torch.set_num_threads(1)


def random_case(seed: int, density: float):
    g = torch.Generator().manual_seed(seed)
    shapes = {"a": (7, 5), "b": (4, 3, 2, 2), "c": (11,)}
    mask = Mask({n: torch.rand(s, generator=g) < density for n, s in shapes.items()})
    scores = {n: torch.randn(s, generator=g) for n, s in shapes.items()}
    # make the scores of active weights the highest, to tempt growth into picking them
    tempting = {n: torch.where(mask[n], s + 100.0, s) for n, s in scores.items()}
    return mask, scores, tempting


@settings(max_examples=40, deadline=None, database=None)
@given(seed=st.integers(0, 10_000), density=st.floats(0.0, 1.0), k=st.integers(0, 60))
def test_grow_only_activates_inactive_highest(seed, density, k):
    mask, _, scores = random_case(seed, density)
    new = grow_highest(mask, scores, {n: k for n in mask})
    for n in mask:
        old, cur = mask[n], new[n]
        assert torch.equal(cur & old, old)  # nothing active was touched
        grown = cur & ~old
        assert int(grown.sum()) == min(k, int((~old).sum()))
        still_inactive = ~cur
        if grown.any() and still_inactive.any():
            assert scores[n][grown].min() >= scores[n][still_inactive].max()


@settings(max_examples=40, deadline=None, database=None)
@given(seed=st.integers(0, 10_000), density=st.floats(0.0, 1.0), k=st.integers(0, 60))
def test_prune_only_removes_active_lowest(seed, density, k):
    mask, scores, _ = random_case(seed, density)
    # pruned weights score lowest: pruning must still skip them
    scores = {n: torch.where(mask[n], s, s - 100.0) for n, s in scores.items()}
    new = prune_lowest(mask, scores, {n: k for n in mask})
    for n in mask:
        old, cur = mask[n], new[n]
        assert torch.equal(cur & old, cur)  # nothing inactive was activated
        removed = old & ~cur
        assert int(removed.sum()) == min(k, int(old.sum()))
        if removed.any() and cur.any():
            assert scores[n][removed].max() <= scores[n][cur].min()


def test_ops_do_not_mutate_input_and_skip_missing_layers():
    mask, scores, _ = random_case(0, 0.5)
    before = mask.clone()
    new = prune_lowest(mask, scores, {"a": 3})
    assert mask == before
    assert torch.equal(new["b"], mask["b"]) and torch.equal(new["c"], mask["c"])
    assert int(new["a"].sum()) == int(mask["a"].sum()) - 3
    with pytest.raises(ConfigError):
        grow_highest(mask, scores, {"a": -1})


@pytest.mark.parametrize("init", ["zero", "keep"])
def test_regrow_init(init):
    torch.manual_seed(0)
    model = nn.Linear(4, 3)
    with torch.no_grad():
        model.weight.copy_(torch.arange(1.0, 13.0).reshape(3, 4))
    old = Mask({"weight": torch.tensor([[1, 1, 0, 0]] * 3, dtype=torch.bool)})
    new = Mask({"weight": torch.tensor([[1, 0, 1, 0]] * 3, dtype=torch.bool)})
    bias = model.bias.detach().clone()
    regrow_init(model, old, new, init=init)
    w = model.weight.detach()
    assert torch.equal(w[:, 1], torch.zeros(3))  # pruned
    assert torch.equal(w[:, 0], torch.tensor([1.0, 5.0, 9.0]))  # kept
    assert torch.equal(w[:, 3], torch.tensor([4.0, 8.0, 12.0]))  # inactive, untouched
    grown = torch.zeros(3) if init == "zero" else torch.tensor([3.0, 7.0, 11.0])
    assert torch.equal(w[:, 2], grown)
    assert torch.equal(model.bias.detach(), bias)
    with pytest.raises(ConfigError):
        regrow_init(model, old, new, init="normal")
