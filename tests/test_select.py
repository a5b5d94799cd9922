import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fedsparse.errors import ConfigError
from fedsparse.sparse.budgets import layer_budget
from fedsparse.sparse.select import GRANULARITIES, input_feature_selection, select_mask

torch.set_num_threads(1)

SHAPES = {
    "conv1": (6, 3, 5, 5),
    "conv2": (16, 6, 5, 5),
    "fc1": (120, 400),
    "fc2": (84, 120),
    "fc3": (10, 84),
}


def random_scores(seed: int, shapes=SHAPES) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {n: torch.randn(s, generator=g) for n, s in shapes.items()}


@pytest.mark.parametrize("budget", ["uniform", "er", "erk", "feddst_erk"])
@pytest.mark.parametrize("density", [0.03, 0.2, 0.5, 1.0])
def test_layer_scope_matches_budget_exactly(budget, density):
    scores = random_scores(0)
    mask = select_mask(scores, density, scope="layer", budget=budget)
    kept = layer_budget(budget, {n: s.shape for n, s in scores.items()}, density)
    assert {n: int(m.sum()) for n, m in mask.items()} == kept


def test_layer_scope_keeps_top_scores():
    scores = random_scores(1)
    mask = select_mask(scores, 0.3)
    for n, s in scores.items():
        assert s[mask[n]].min() >= s[~mask[n]].max()


@settings(max_examples=20, deadline=None, database=None)
@given(seed=st.integers(0, 10_000), density=st.floats(0.001, 1.0))
def test_global_scope_exact_count_one_threshold(seed, density):
    scores = random_scores(seed)
    mask = select_mask(scores, density, scope="global")
    total = mask.numel()
    assert mask.num_active() == max(round(density * total), len(SHAPES))
    for m in mask.values():
        assert m.any()
    kept = torch.cat([scores[n][mask[n]] for n in scores])
    pruned = torch.cat([scores[n][~mask[n]] for n in scores])
    if pruned.numel() and round(density * total) >= 5 * len(SHAPES):
        # one threshold, except at most the forced best weight of each layer
        assert (kept < pruned.max()).sum() <= len(SHAPES)


def test_global_scope_never_collapses_a_layer():
    scores = random_scores(2)
    scores["fc2"] = scores["fc2"].abs() * 1e-9 - 10.0  # all far below the others
    mask = select_mask(scores, 0.1, scope="global")
    assert int(mask["fc2"].sum()) == 1
    assert bool(mask["fc2"].reshape(-1)[scores["fc2"].argmax()])
    assert mask.num_active() == round(0.1 * mask.numel())


def test_lower_is_better():
    scores = random_scores(3)
    high = select_mask(scores, 0.3, higher_is_better=True)
    low = select_mask({n: -s for n, s in scores.items()}, 0.3, higher_is_better=False)
    assert high == low
    flipped = select_mask(scores, 0.3, higher_is_better=False)
    for n, s in scores.items():
        assert s[flipped[n]].max() <= s[~flipped[n]].min()


def test_seeds_reproduce_masks():
    a = select_mask(random_scores(7), 0.2, scope="global")
    b = select_mask(random_scores(7), 0.2, scope="global")
    c = select_mask(random_scores(8), 0.2, scope="global")
    assert a == b
    assert a != c


def test_ties_go_to_lower_index():
    mask = select_mask({"w": torch.ones(4, 5)}, 0.25)
    assert mask["w"].reshape(-1).tolist() == [True] * 5 + [False] * 15
    mask = select_mask({"a": torch.ones(10), "b": torch.ones(10)}, 0.5, scope="global")
    # b's forced best weight (its index 0) takes one of the 10 places; a fills the rest in order
    assert mask["a"].tolist() == [True] * 9 + [False]
    assert mask["b"].tolist() == [True] + [False] * 9


def assert_whole_slices(m: torch.Tensor, dim: int):
    other = [d for d in range(m.dim()) if d != dim]
    assert torch.equal(m.all(dim=other) if other else m, m.any(dim=other) if other else m)


@pytest.mark.parametrize("scope", ["layer", "global"])
def test_channel_granularity_keeps_whole_filters(scope):
    scores = random_scores(4)
    mask = select_mask(scores, 0.4, scope=scope, granularity="channel")
    for n, m in mask.items():
        assert_whole_slices(m, 0)
        assert m.any()
    if scope == "layer":  # groups closest to the budget: conv1 0.4 * 6 filters -> 2
        assert int(mask["conv1"].all(dim=(1, 2, 3)).sum()) == 2
        assert int(mask["fc1"].all(dim=1).sum()) == 48


@pytest.mark.parametrize("scope", ["layer", "global"])
def test_input_granularity_keeps_whole_inputs(scope):
    scores = random_scores(5)
    mask = select_mask(scores, 0.25, scope=scope, granularity="input")
    for n, m in mask.items():
        assert_whole_slices(m, 1)
        assert m.any()
    if scope == "layer":
        assert int(mask["fc1"].all(dim=0).sum()) == 100


def test_channel_granularity_picks_largest_row_sums():
    w = torch.zeros(4, 3)
    w[2] = 1.0
    w[0, 0] = 2.5
    mask = select_mask({"w": w}, 0.5, granularity="channel")
    assert mask["w"].all(dim=1).tolist() == [True, False, True, False]


def test_input_granularity_rejects_1d():
    with pytest.raises(ConfigError):
        select_mask({"b": torch.ones(5)}, 0.5, granularity="input")


def test_bad_options():
    with pytest.raises(ConfigError, match="global"):
        select_mask(random_scores(0), 0.5, scope="local")
    with pytest.raises(ConfigError, match="unstructured"):
        select_mask(random_scores(0), 0.5, granularity="kernel")
    with pytest.raises(ConfigError):
        select_mask(random_scores(0), 0.0)
    assert GRANULARITIES.names() == ["channel", "input", "unstructured"]


def test_input_feature_selection_mlp():
    g = torch.Generator().manual_seed(0)
    w = torch.rand(300, 784, generator=g)
    dead = torch.arange(0, 784, 2)
    w[:, dead] = 0.0  # even pixels unread by every neuron
    kept, importance = input_feature_selection(w, 392, input_shape=(28, 28))
    assert torch.equal(kept, torch.arange(1, 784, 2))
    assert importance.shape == (28, 28)
    assert torch.allclose(importance.reshape(-1), w.sum(dim=0))
    kept_frac, flat = input_feature_selection(w, 0.25)
    assert kept_frac.numel() == 196 and flat.shape == (784,)
    assert torch.all(kept_frac[1:] > kept_frac[:-1])
    assert set(kept_frac.tolist()) <= set(kept.tolist())


def test_input_feature_selection_conv_channels():
    w = torch.ones(8, 3, 3, 3)
    w[:, 1] = 0.1
    kept, importance = input_feature_selection(w, 2)
    assert kept.tolist() == [0, 2]
    assert importance.shape == (3,)
    with pytest.raises(ConfigError):
        input_feature_selection(w, 4)
    with pytest.raises(ConfigError):
        input_feature_selection(w, 1, input_shape=(2, 2))
