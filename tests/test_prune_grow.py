"""The prune/grow step (fedsparse.sparse.prune_grow): rules on tiny tensors with hand-computed
masks, `regrow_from`, the FedDST client's weight resets, and registering a new growth rule."""

from collections.abc import Mapping

import pytest
import torch
from torch import Tensor, nn

from fedsparse.config import Config, validate
from fedsparse.errors import ConfigError
from fedsparse.sparse.criteria import score
from fedsparse.sparse.mask import Mask
from fedsparse.sparse.prune_grow import GROW_RULES, PRUNE_RULES, RuleInputs, readjust
from fedsparse.train.local import LocalTrainer
from fedsparse.train.readjust import readjust_mask

torch.set_num_threads(1)

MASK = Mask({"w": torch.tensor([True, True, True, False])})
WEIGHTS = {"w": torch.tensor([0.5, -0.1, 2.0, 0.0])}
GRADS = {"w": torch.tensor([-5.0, 1.0, 0.5, -2.0])}


def inputs(grads: Mapping[str, Tensor] = GRADS) -> RuleInputs:
    return RuleInputs(weights=WEIGHTS, loss_gradients=lambda: grads)


def test_registries() -> None:
    assert PRUNE_RULES.names() == ["magnitude"]
    assert GROW_RULES.names() == ["gradient", "random"]


def test_magnitude_prune_without_growth() -> None:
    # drop round(1/3 * 3) = 1 active weight: the smallest |w| is index 1 (|-0.1|)
    out = readjust(MASK, inputs(), 1 / 3, grow=None)
    assert out.mask["w"].tolist() == out.pruned["w"].tolist() == [True, False, True, False]
    assert not out.grown["w"].any()
    # counts by layer (FedDST's server: back to the budget); layers absent keep their mask
    assert readjust(MASK, inputs(), {"w": 2}, grow=None).mask["w"].tolist() == [False, False, True,
                                                                                False]
    assert readjust(MASK, inputs(), {}, grow=None).mask == MASK


def test_gradient_growth_among_inactive() -> None:
    # prune index 1; candidates {1, 3} with |g| 1 and 2: grow index 3
    out = readjust(MASK, inputs(), 1 / 3)
    assert out.mask["w"].tolist() == [True, False, True, True]
    assert out.grown["w"].tolist() == [False, False, False, True]
    assert int(out.mask["w"].sum()) == int(MASK["w"].sum())
    # a weight just pruned may come back
    back = readjust(MASK, inputs({"w": torch.tensor([0.0, 3.0, 0.0, 1.0])}), 1 / 3)
    assert back.mask == MASK and back.grown["w"].tolist() == [False, True, False, False]


def test_gradient_growth_is_the_gradient_criterion() -> None:
    model = nn.Linear(3, 2, bias=False)
    x, y = torch.randn(4, 3, generator=torch.Generator().manual_seed(0)), torch.tensor([0, 1, 1, 0])
    criterion = score("gradient", model, ["weight"], [(x, y)])
    loss = nn.functional.cross_entropy(model(x), y)
    (grad,) = torch.autograd.grad(loss, [model.weight])
    given = RuleInputs(weights={}, loss_gradients=lambda: {"weight": grad})
    rule = GROW_RULES.get("gradient")(Mask({"weight": torch.zeros(2, 3, dtype=torch.bool)}), given)
    assert torch.allclose(rule["weight"], criterion["weight"])


def test_readjust_keeps_layer_counts() -> None:
    g = torch.Generator().manual_seed(3)
    shapes = {"a": (7, 5), "b": (4, 3, 2, 2), "c": (11,)}
    mask = Mask({n: torch.rand(s, generator=g) < 0.5 for n, s in shapes.items()})
    weights = {n: torch.randn(s, generator=g) for n, s in shapes.items()}
    grads = {n: torch.randn(s, generator=g) for n, s in shapes.items()}
    step = RuleInputs(weights=weights, loss_gradients=lambda: grads)
    new = readjust(mask, step, 0.3).mask
    for n in mask:
        active = int(mask[n].sum())
        assert int(new[n].sum()) == active
        grown, dropped = int((new[n] & ~mask[n]).sum()), int((mask[n] & ~new[n]).sum())
        assert grown == dropped <= round(0.3 * active)
    assert new.changed(mask) > 0
    assert readjust(mask, step, 0.0).mask == mask


def test_regrow_from_all_can_hit_active_weights() -> None:
    # top-1 |g| over all coordinates is index 0, already active: nothing new is grown
    out = readjust(MASK, inputs(), 1 / 3, regrow_from="all")
    assert out.pruned["w"].tolist() == [True, False, True, False]
    assert out.grown["w"].tolist() == [True, False, False, False]
    assert out.mask["w"].tolist() == [True, False, True, False]
    with pytest.raises(ConfigError, match="regrow_from"):
        readjust(MASK, inputs(), 0.5, regrow_from="active")


def test_bad_fraction_and_missing_inputs() -> None:
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        readjust(MASK, inputs(), 1.5)
    with pytest.raises(ConfigError, match="needs loss gradients"):
        readjust(MASK, RuleInputs(weights=WEIGHTS), 0.5)
    with pytest.raises(ConfigError, match="needs the model"):
        readjust(MASK, RuleInputs(weights=WEIGHTS), 0.5, grow="random")
    with pytest.raises(ConfigError, match="unknown growth rule 'nope'; allowed: gradient, random"):
        readjust(MASK, inputs(), 0.5, grow="nope")


def test_random_growth_is_seeded_uniform_noise() -> None:
    model = nn.Linear(4, 1, bias=False)
    mask = Mask({"weight": torch.tensor([[True, True, True, False]])})
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[0.5, -0.1, 2.0, 0.0]]))

    def run(seed: int) -> Mask:
        g = torch.Generator().manual_seed(seed)
        return readjust(mask, RuleInputs(weights=dict(model.named_parameters()), model=model,
                                         generator=g), 2 / 3, grow="random").mask

    # prune indices 1 and 0 (|w| 0.1, 0.5); grow 2 of the candidates {0, 1, 3} with the highest
    # U[0, 1) draws of the seeded generator, in flat order
    noise = torch.rand(4, generator=torch.Generator().manual_seed(7))
    lowest = int(min((0, 1, 3), key=lambda i: float(noise[i])))
    expected = [i != lowest and i in (0, 1, 3) for i in range(4)]
    expected[2] = True
    assert run(7)["weight"][0].tolist() == expected
    assert run(7) == run(7)


def _trainer() -> tuple[LocalTrainer, Tensor, Tensor, Mask]:
    """Linear 2 -> 3 on one input [1, 0] of class 0: dL/dW = (softmax - onehot) [1, 0], so
    |dL/dW| is largest at W[0, 0] (1 - p0 = p1 + p2) and zero in column 1."""
    model = nn.Linear(2, 3, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[3.0, 0.1], [0.0, 0.2], [0.0, 0.0]]))
    mask = Mask({"weight": torch.tensor([[True, True], [False, True], [False, False]])})
    trainer = LocalTrainer(model, mask, lr=0.1, momentum=0.0, weight_decay=0.0, batch_size=1)
    return trainer, torch.tensor([[1.0, 0.0]]), torch.tensor([0]), mask


@pytest.mark.parametrize("regrow_from", ["all", "inactive"])
def test_client_readjust_weights(regrow_from: str) -> None:
    trainer, x, y, mask = _trainer()
    cfg = Config().with_(regrow_from=regrow_from, readjust_gradient="epoch")
    # drop round(1/3 * 3) = 1: W[0, 1] (|0.1|)
    new = readjust_mask(trainer, x, y, mask, 1 / 3, cfg, torch.Generator().manual_seed(0))
    w = trainer.model.weight.detach()
    if regrow_from == "all":
        # top-1 |grad| over all is W[0, 0], active: reset to zero, no new weight
        assert new["weight"].tolist() == [[True, False], [False, True], [False, False]]
        assert torch.equal(w, torch.tensor([[0.0, 0.0], [0.0, 0.2], [0.0, 0.0]]))
    else:
        # among the inactive, |grad| is largest at W[1, 0] or W[2, 0] (p1 > p2 as z1 = z2 = 0:
        # a tie, the lower index wins): W[1, 0] grows at zero
        assert new["weight"].tolist() == [[True, False], [True, True], [False, False]]
        assert torch.equal(w, torch.tensor([[3.0, 0.0], [0.0, 0.2], [0.0, 0.0]]))


def _lowest_index(mask: Mask, inputs: RuleInputs) -> dict[str, Tensor]:
    """Grow the candidates of lowest flat index first."""
    return {n: -torch.arange(m.numel(), dtype=torch.float32).reshape(m.shape)
            for n, m in mask.items()}


@pytest.fixture
def lowest_index_rule(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(GROW_RULES, "_items", dict(GROW_RULES._items))  # restored after the test
    GROW_RULES.register("lowest_index")(_lowest_index)
    return "lowest_index"


def test_a_registered_growth_rule_is_selectable(lowest_index_rule: str) -> None:
    out = readjust(MASK, inputs(), 1 / 3, grow=lowest_index_rule)
    assert out.mask["w"].tolist() == [True, True, True, False]  # index 1 pruned, then regrown
    validate(Config().with_(growth=lowest_index_rule))
    trainer, x, y, mask = _trainer()
    cfg = Config().with_(growth=lowest_index_rule)
    new = readjust_mask(trainer, x, y, mask, 2 / 3, cfg, torch.Generator().manual_seed(0))
    # drop W[0, 1] and W[1, 1] (0.1, 0.2); grow flat indices 1 and 2 = W[0, 1], W[1, 0]
    assert new["weight"].tolist() == [[True, True], [True, False], [False, False]]


def test_config_growth_names_the_rules() -> None:
    with pytest.raises(ConfigError, match="growth.*one of: gradient, random"):
        validate(Config().with_(growth="nope"))
