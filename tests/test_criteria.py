"""Criteria: hand-computed SNIP, GraSP's Hessian-gradient product, SynFlow's closed form, masks,
reproducibility, and absence of side effects."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fedsparse.errors import ConfigError
from fedsparse.models import build_model, prunable_names
from fedsparse.sparse.criteria import CRITERIA, score, synflow_mask
from fedsparse.sparse.mask import Mask

torch.set_num_threads(1)

DATA_CRITERIA = ("gradient", "snip", "grasp", "movement")


def _tiny(dtype: torch.dtype = torch.float32) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 3)).to(dtype)


def _batches(n: int, dtype: torch.dtype = torch.float32, shape: tuple[int, ...] = (4,),
             classes: int = 3) -> list[tuple[Tensor, Tensor]]:
    gen = torch.Generator().manual_seed(1)
    return [(torch.randn(6, *shape, generator=gen, dtype=dtype),
             torch.randint(0, classes, (6,), generator=gen)) for _ in range(n)]


def _grad(model: nn.Module, names: list[str], batches: list[tuple[Tensor, Tensor]]
          ) -> list[Tensor]:
    """Hand computation: gradient of the summed per-batch mean cross-entropy."""
    params = dict(model.named_parameters())
    loss = sum(F.cross_entropy(model(x), y) for x, y in batches)
    return list(torch.autograd.grad(loss, [params[n] for n in names]))


@pytest.fixture(scope="module")
def options(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    """Per-criterion options: `learned` needs a saved scorer (an untrained one will do here)."""
    from fedsparse.sparse.criteria.learned import Scorer

    path = tmp_path_factory.mktemp("scorer") / "scorer.npz"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        Scorer((8,)).save(path)
    return lambda name: {"scorer_path": str(path)} if name == "learned" else {}


def _bn_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                         nn.Dropout(0.5), nn.Linear(4 * 6 * 6, 3))


def test_registry_and_errors() -> None:
    assert set(CRITERIA.names()) == {"random", "magnitude", "gradient", "snip", "grasp",
                                     "synflow", "movement", "lottery", "learned"}
    model = _tiny()
    with pytest.raises(ConfigError, match="allowed"):
        score("obd", model, ["0.weight"], None)
    for name in DATA_CRITERIA:
        with pytest.raises(ConfigError, match=name):
            score(name, model, ["0.weight"], None)
    with pytest.raises(ConfigError, match="not parameters"):
        score("magnitude", model, ["0.wieght"], None)
    with pytest.raises(ConfigError, match="input_shape"):
        score("synflow", model, ["0.weight"], None)


def test_snip_equals_hand_computation() -> None:
    model, batches, names = _tiny(), _batches(1), ["0.weight", "2.weight"]
    grads = _grad(model, names, batches)
    params = dict(model.named_parameters())
    scores = score("snip", model, names, batches)
    for n, g in zip(names, grads):
        assert torch.equal(scores[n], (params[n].detach() * g).abs())


def test_gradient_and_movement_equal_hand_computation() -> None:
    model, batches, names = _tiny(), _batches(2), ["0.weight", "2.weight"]
    grads = _grad(model, names, batches)
    params = dict(model.named_parameters())
    grad_scores = score("gradient", model, names, batches)
    movement = score("movement", model, names, batches)
    for n, g in zip(names, grads):
        torch.testing.assert_close(grad_scores[n], g.abs())
        torch.testing.assert_close(movement[n], -params[n].detach() * g)


def test_grasp_hessian_gradient_matches_finite_differences() -> None:
    model, batches, names = _tiny(torch.float64), _batches(2, torch.float64), ["0.weight",
                                                                               "2.weight"]
    params = dict(model.named_parameters())
    w0 = {n: params[n].detach().clone() for n in names}
    g = _grad(model, names, batches)
    eps = 1e-5

    def grad_at(sign: float) -> list[Tensor]:
        with torch.no_grad():
            for n, gn in zip(names, g):
                params[n].copy_(w0[n] + sign * eps * gn)
        out = _grad(model, names, batches)
        with torch.no_grad():
            for n in names:
                params[n].copy_(w0[n])
        return out

    hg = [(p - m) / (2 * eps) for p, m in zip(grad_at(1.0), grad_at(-1.0))]
    scores = score("grasp", model, names, batches, temperature=1.0)  # _grad: the loss at T = 1
    for n, h in zip(names, hg):
        assert h.abs().max() > 1e-3  # the check is not vacuous
        expected = (w0[n] * h).to(torch.float32)
        torch.testing.assert_close(scores[n], expected, rtol=1e-5, atol=1e-7)


def test_synflow_one_pass_matches_closed_form() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4, bias=False), nn.Linear(4, 2, bias=False))
    w1, w2 = model[0].weight.detach(), model[1].weight.detach()
    scores = score("synflow", model, ["0.weight", "1.weight"], None, input_shape=(3,))
    # R = 1^T |W2| |W1| 1: dR/d|W1|[i, j] = sum_k |W2[k, i]|, dR/d|W2|[k, i] = sum_j |W1[i, j]|.
    expected1 = w1.abs() * w2.abs().sum(0)[:, None]
    expected2 = w2.abs() * w1.abs().sum(1)[None, :]
    torch.testing.assert_close(scores["0.weight"], expected1)
    torch.testing.assert_close(scores["1.weight"], expected2)
    inferred = score("synflow", model, ["0.weight", "1.weight"], [(torch.randn(5, 3), None)])
    torch.testing.assert_close(inferred["0.weight"], expected1)



def test_synflow_takes_absolute_biases() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    with torch.no_grad():
        model[0].bias.copy_(-torch.arange(1.0, 5.0))
    w1, b1, w2 = model[0].weight.detach(), model[0].bias.detach(), model[1].weight.detach()
    scores = score("synflow", model, ["0.weight", "1.weight"], None, input_shape=(3,))
    # R = 1^T (|W2| (|W1| 1 + |b1|) + |b2|)
    torch.testing.assert_close(scores["1.weight"],
                               w2.abs() * (w1.abs().sum(1) + b1.abs())[None, :])


def test_synflow_flow_is_not_clipped_by_relu6() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4, bias=False), nn.ReLU6(), nn.Linear(4, 2, bias=False))
    with torch.no_grad():
        model[0].weight.mul_(20.0)  # all-ones flow would saturate ReLU6 at every unit
    w1, w2 = model[0].weight.detach(), model[2].weight.detach()
    scores = score("synflow", model, ["0.weight", "2.weight"], None, input_shape=(3,))
    torch.testing.assert_close(scores["0.weight"], w1.abs() * w2.abs().sum(0)[:, None])
    assert isinstance(model[1], nn.ReLU6)

def test_synflow_mask_one_iteration_is_top_k_of_closed_form() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4, bias=False), nn.Linear(4, 2, bias=False))
    w1, w2 = model[0].weight.detach(), model[1].weight.detach()
    flat = torch.cat([(w1.abs() * w2.abs().sum(0)[:, None]).flatten(),
                      (w2.abs() * w1.abs().sum(1)[None, :]).flatten()])
    keep = torch.zeros(20, dtype=torch.bool)
    keep[flat.topk(5).indices] = True
    mask = synflow_mask(model, ["0.weight", "1.weight"], 0.25, (3,), iterations=1)
    assert torch.equal(torch.cat([mask["0.weight"].flatten(), mask["1.weight"].flatten()]), keep)


def test_synflow_mask_hits_target_and_avoids_collapse() -> None:
    model = build_model("cifar10_net", 10, 3, 32, seed=0)
    names = prunable_names(model)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    mask = synflow_mask(model, names, 0.01, (3, 32, 32), iterations=10)
    assert mask.num_active() == round(0.01 * 781_770)
    assert all(d > 0 for d in mask.layer_densities().values())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    local = synflow_mask(model, names, 0.3, (3, 32, 32), iterations=3, scope="local")
    for n, m in local.items():
        assert int(m.sum()) == round(0.3 * m.numel())
    budget = {n: d for n, d in zip(names, (1.0, 0.5, 0.1, 0.5, 1.0))}
    layered = synflow_mask(model, names, budget, (3, 32, 32), iterations=3)
    assert layered.layer_densities()["conv1.weight"] == 1.0
    assert int(layered["fc1.weight"].sum()) == round(0.1 * 120 * 6400)
    with pytest.raises(ConfigError, match="scope"):
        synflow_mask(model, names, 0.3, (3, 32, 32), scope="layer")
    with pytest.raises(ConfigError, match="exceeds"):
        synflow_mask(model, names, 0.5, (3, 32, 32), iterations=2, mask=local)


def test_synflow_scores_reproduce_their_mask() -> None:
    model = build_model("cifar10_net", 10, 3, 32, seed=0)
    names = prunable_names(model)
    mask = synflow_mask(model, names, 0.1, (3, 32, 32), iterations=5)
    scores = score("synflow", model, names, None, density=0.1, iterations=5,
                   input_shape=(3, 32, 32))
    assert Mask({n: torch.isfinite(s) for n, s in scores.items()}) == mask


@pytest.mark.parametrize("name", sorted(CRITERIA.names()))
def test_criteria_have_no_side_effects(name: str, options) -> None:  # noqa: ANN001
    model = _bn_net()
    model[1].running_mean.fill_(0.3)
    model.train()
    model[0].weight.grad = torch.full_like(model[0].weight, 7.0)
    params = {k: p.detach().clone() for k, p in model.named_parameters()}
    buffers = {k: b.clone() for k, b in model.named_buffers()}
    rng = torch.get_rng_state()
    names = prunable_names(model)
    batches = _batches(2, shape=(3, 8, 8))
    score(name, model, names, batches, generator=torch.Generator().manual_seed(0), **options(name))
    for k, p in model.named_parameters():
        assert torch.equal(p, params[k]), k
    for k, b in model.named_buffers():
        assert torch.equal(b, buffers[k]), k
    assert torch.equal(model[0].weight.grad, torch.full_like(model[0].weight, 7.0))
    assert all(p.grad is None for k, p in model.named_parameters() if k != "0.weight")
    assert all(m.training for m in model.modules())
    assert torch.equal(torch.get_rng_state(), rng)


def test_criteria_use_batch_statistics_without_dropout() -> None:
    model, batches = _bn_net().eval(), _batches(1, shape=(3, 8, 8))
    names = prunable_names(model)
    first = score("snip", model, names, batches)
    second = score("snip", model, names, batches)
    assert all(torch.equal(first[n], second[n]) for n in names)  # dropout off
    model.train()
    model[4].p = 0.0
    params = dict(model.named_parameters())
    loss = F.cross_entropy(model(batches[0][0]), batches[0][1])  # BN on batch statistics
    g = torch.autograd.grad(loss, [params[n] for n in names])
    for n, gn in zip(names, g):
        torch.testing.assert_close(first[n], (params[n].detach() * gn).abs())


def test_random_is_reproducible() -> None:
    model, names = _tiny(), ["0.weight", "2.weight"]
    a = score("random", model, names, None, generator=torch.Generator().manual_seed(3))
    b = score("random", model, names, None, generator=torch.Generator().manual_seed(3))
    c = score("random", model, names, None, generator=torch.Generator().manual_seed(4))
    for n in names:
        assert torch.equal(a[n], b[n])
        assert not torch.equal(a[n], c[n])
        assert 0.0 <= float(a[n].min()) and float(a[n].max()) < 1.0


@pytest.mark.parametrize("name", sorted(CRITERIA.names()))
def test_mask_is_respected(name: str, options) -> None:  # noqa: ANN001
    model, batches, names = _tiny(), _batches(1), ["0.weight", "2.weight"]
    gen = torch.Generator().manual_seed(0)
    mask = Mask({n: torch.rand(p.shape, generator=gen) < 0.5
                 for n, p in model.named_parameters() if n in names})
    scores = score(name, model, names, batches, mask=mask,
                   generator=torch.Generator().manual_seed(0), **options(name))
    for n in names:
        kept = mask[n]
        assert torch.isfinite(scores[n][kept]).all()
        if name == "gradient":  # growth ranks the inactive weights: scored, not excluded
            assert torch.isfinite(scores[n]).all() and (scores[n][~kept] > 0).any()
        else:
            assert torch.isneginf(scores[n][~kept]).all()


def test_scores_use_masked_weights() -> None:
    model, batches, names = _tiny(), _batches(1), ["0.weight", "2.weight"]
    mask = Mask({"0.weight": torch.arange(20).view(5, 4) % 3 != 0,
                 "2.weight": torch.ones(3, 5, dtype=torch.bool)})
    masked_model = _tiny()
    mask.apply(masked_model)
    for name in ("snip", "grasp", "movement", "gradient"):
        a = score(name, model, names, batches, mask=mask)
        b = score(name, masked_model, names, batches, mask=mask)
        for n in names:
            torch.testing.assert_close(a[n], b[n])


@pytest.mark.parametrize("name", sorted(CRITERIA.names()))
def test_every_criterion_on_cifar10_net(name: str, options) -> None:  # noqa: ANN001
    model = build_model("cifar10_net", 10, 3, 32, seed=0)
    names = prunable_names(model)
    gen = torch.Generator().manual_seed(0)
    batches = [(torch.randn(4, 3, 32, 32, generator=gen), torch.randint(0, 10, (4,),
                                                                           generator=gen))]
    scores = score(name, model, names, batches, generator=torch.Generator().manual_seed(0),
                   **options(name))
    params = dict(model.named_parameters())
    assert list(scores) == names
    for n, s in scores.items():
        assert s.shape == params[n].shape and s.dtype == torch.float32
        assert s.device == params[n].device
        assert torch.isfinite(s).all()
        assert (s != 0).any()
