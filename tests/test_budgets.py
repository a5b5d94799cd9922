import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fedsparse.errors import ConfigError
from fedsparse.sparse.budgets import BUDGETS, layer_budget

torch.set_num_threads(1)

CIFAR10NET = {
    "conv1": torch.Size([6, 3, 5, 5]),
    "conv2": torch.Size([16, 6, 5, 5]),
    "fc1": torch.Size([120, 6400]),
    "fc2": torch.Size([84, 120]),
    "fc3": torch.Size([10, 84]),
}
MLP = {"fc1": torch.Size([300, 784]), "fc2": torch.Size([100, 300]), "fc3": torch.Size([10, 100])}
VGGISH = {
    "c1": torch.Size([16, 3, 3, 3]),
    "c2": torch.Size([32, 16, 3, 3]),
    "c3": torch.Size([64, 32, 3, 3]),
    "c4": torch.Size([64, 64, 3, 3]),
    "bn": torch.Size([64]),
    "fc": torch.Size([10, 64]),
}
SHAPE_SETS = {"cifar10net": CIFAR10NET, "mlp": MLP, "vggish": VGGISH}
DENSITIES = [0.01, 0.05, 0.2, 0.5, 0.9, 1.0]


def sizes(shapes):
    return {n: math.prod(s) for n, s in shapes.items()}


def check_budget(shapes, density, kept):
    n = sizes(shapes)
    assert set(kept) == set(shapes)
    assert sum(kept.values()) == round(density * sum(n.values()))
    for name in shapes:
        assert isinstance(kept[name], int)
        assert 1 <= kept[name] <= n[name]


@pytest.mark.parametrize("budget", ["uniform", "er", "erk", "feddst_erk"])
@pytest.mark.parametrize("shape_set", list(SHAPE_SETS))
@pytest.mark.parametrize("density", DENSITIES)
def test_budget_sums_exactly(budget, shape_set, density):
    shapes = SHAPE_SETS[shape_set]
    check_budget(shapes, density, layer_budget(budget, shapes, density))


@settings(max_examples=25, deadline=None, database=None)
@given(
    budget=st.sampled_from(["uniform", "er", "erk", "feddst_erk"]),
    shape_set=st.sampled_from(list(SHAPE_SETS)),
    density=st.floats(0.01, 1.0),
)
def test_budget_sums_exactly_property(budget, shape_set, density):
    shapes = SHAPE_SETS[shape_set]
    check_budget(shapes, density, layer_budget(budget, shapes, density))


@pytest.mark.parametrize("shape_set", list(SHAPE_SETS))
@pytest.mark.parametrize("density", [0.05, 0.3, 0.77])
def test_uniform_within_one_weight(shape_set, density):
    shapes = SHAPE_SETS[shape_set]
    kept = layer_budget("uniform", shapes, density)
    for name, n in sizes(shapes).items():
        assert abs(kept[name] - density * n) < 1


def rigl_erk_reference(shapes, density, kernel=True):
    """RigL's iterative ERK (densities, real-valued), for 2-D/4-D layers only."""
    n = {k: math.prod(s) for k, s in shapes.items()}
    raw = {
        k: (sum(s) / n[k]) if kernel else (s[0] + s[1]) / (s[0] * s[1]) for k, s in shapes.items()
    }
    dense: set[str] = set()
    while True:
        free_target = density * sum(n.values()) - sum(n[k] for k in dense)
        eps = free_target / sum(raw[k] * n[k] for k in n if k not in dense)
        over = {k for k in n if k not in dense and eps * raw[k] > 1}
        if not over:
            return {k: (n[k] if k in dense else eps * raw[k] * n[k]) for k in n}
        dense |= over


@settings(max_examples=25, deadline=None, database=None)
@given(
    shape_set=st.sampled_from(["cifar10net", "mlp"]),
    density=st.floats(0.02, 1.0),
    kernel=st.booleans(),
)
def test_erk_and_er_match_rigl_iteration_within_one_weight(shape_set, density, kernel):
    shapes = SHAPE_SETS[shape_set]
    kept = layer_budget("erk" if kernel else "er", shapes, density)
    target = rigl_erk_reference(shapes, density, kernel)
    for name in shapes:
        assert abs(kept[name] - target[name]) < 1 + 1e-6


def test_erk_hand_computed_dense_layer_and_resolve():
    # A: 2x2 Linear, ERK factor (2+2)/(2*2) = 1; C: 10x10, factor 0.2; B: 100x100, factor 0.02.
    # density 0.1 -> kept total 0.1 * (4 + 100 + 10000) = 1010.4.
    # First solve: eps * (1*4 + 0.2*100 + 0.02*10000) = 1010.4 -> eps = 4.51: A would be 451% dense
    # A made dense (4 weights); re-solve: eps * (20 + 200) = 1006.4 -> eps = 4.5745...
    # B: 200 * eps = 914.909..., C: 20 * eps = 91.4909...; round(1010.4) = 1010:
    # floors 4 + 914 + 91 = 1009, the one left goes to the larger remainder (B) -> 915.
    shapes = {"A": torch.Size([2, 2]), "B": torch.Size([100, 100]), "C": torch.Size([10, 10])}
    assert layer_budget("erk", shapes, 0.1) == {"A": 4, "B": 915, "C": 91}


def test_erk_kernel_terms_matter():
    # one conv 4x4x3x3 (factor (4+4+3+3)/144) and one Linear 50x50 (factor 100/2500) at density 0.1:
    # total 0.1 * 2644 = 264.4; eps * (14 + 100) = 264.4 -> eps = 2.3193; conv 32.47, fc 231.93.
    shapes = {"conv": torch.Size([4, 4, 3, 3]), "fc": torch.Size([50, 50])}
    assert layer_budget("erk", shapes, 0.1) == {"conv": 32, "fc": 232}
    # ER ignores the kernel: conv factor 8/16 -> weight 72; eps * (72 + 100) = 264.4, eps = 1.5372:
    # conv 110.68, fc 153.72; round(264.4) = 264 = 110 + 153 + 1, the 1 to fc (larger remainder).
    assert layer_budget("er", shapes, 0.1) == {"conv": 110, "fc": 154}


def test_feddst_erk_reproduces_reference_numbers():
    kept = layer_budget("feddst_erk", CIFAR10NET, 0.2)
    expected = {"conv1": 0.773, "conv2": 0.796, "fc1": 0.800, "fc2": 0.791, "fc3": 0.717}
    for name, n in sizes(CIFAR10NET).items():
        assert abs((1 - kept[name] / n) - expected[name]) < 5e-4, name


def test_feddst_erk_is_nearly_uniform_unlike_erk():
    feddst = layer_budget("feddst_erk", CIFAR10NET, 0.2)
    erk = layer_budget("erk", CIFAR10NET, 0.2)
    assert erk["conv1"] == 436 and feddst["conv1"] == 102
    assert erk["fc3"] == 840  # standard ERK leaves the last layer dense


def test_one_d_layers_get_uniform_share():
    kept = layer_budget("erk", VGGISH, 0.5)
    assert kept["bn"] == 32


def test_every_layer_keeps_at_least_one_weight():
    shapes = {"big": torch.Size([1000, 1000]), "tiny": torch.Size([2, 3])}
    for budget in BUDGETS.names():
        kept = layer_budget(budget, shapes, 0.0001)
        assert kept["tiny"] >= 1
        assert sum(kept.values()) == 100


def test_density_one_is_dense():
    for budget in BUDGETS.names():
        assert layer_budget(budget, MLP, 1.0) == sizes(MLP)


@pytest.mark.parametrize("density", [0.0, -0.1, 1.01, float("nan")])
def test_invalid_density(density):
    with pytest.raises(ConfigError):
        layer_budget("erk", MLP, density)


def test_unknown_budget_lists_names():
    with pytest.raises(ConfigError, match="feddst_erk"):
        layer_budget("nope", MLP, 0.5)


def test_too_few_weights_for_one_per_layer():
    with pytest.raises(ConfigError):
        layer_budget("uniform", MLP, 1e-6)


def test_empty_layer_gets_zero():
    shapes = {"a": torch.Size([0, 5]), "b": torch.Size([10, 10])}
    assert layer_budget("erk", shapes, 0.5) == {"a": 0, "b": 50}
    assert layer_budget("uniform", shapes, 0.5) == {"a": 0, "b": 50}
