"""SparsyFed's pure rules: re-parameterisation, activation-pruned weight gradients, the forward
helper, the client prune and the zero-counting average (hand examples of the method note); then
the federated method: its client step and its server strategy (without Flower's grid)."""

import copy

import pytest
import torch
import torch.nn.functional as F

from fedsparse.config import load_config
from fedsparse.errors import ConfigError
from fedsparse.fl.payload import float_state
from fedsparse.fl.strategies.base import Reply
from fedsparse.fl.strategies.sparsyfed import SparsyFed
from fedsparse.methods.sparsyfed import (SparsyFedForward, SparsyFedOptions, inverse_reparam,
                                         keep_top_fraction, prune_to_density, reparam,
                                         reparam_state, sparse_input_conv2d, sparse_input_linear,
                                         weight_keep, zero_average)
from fedsparse.methods.sparsyfed_client import SparsyFedClient
from fedsparse.models.build import build_model
from fedsparse.models.prunable import prunable_names
from fedsparse.plugin_options import build_options
from fedsparse.sparse.aggregate import sparse_average
from fedsparse.experiment import Experiment
from fedsparse.sparse.mask import Mask
from fedsparse.train.client_update import client_update
from synthetic import synthetic_experiment

torch.set_num_threads(1)


def t(*values):
    return torch.tensor(values, dtype=torch.float32)


# --- options -------------------------------------------------------------------------------

def test_options_defaults_and_ranges():
    opts = build_options(SparsyFedOptions, {}, "strategy_options", "strategy 'sparsyfed'")
    assert (opts.beta, opts.activation_pruning, opts.average, opts.prune_scope) == (
        1.25, True, "zeros", "global")
    assert build_options(SparsyFedOptions, {"beta": 1, "average": "holders"}, "k", "o").beta == 1.0
    for bad in ({"beta": 0.5}, {"beta": 11}, {"average": "mean"}, {"prune_scope": "all"}):
        with pytest.raises(ConfigError):
            build_options(SparsyFedOptions, bad, "strategy_options", "strategy 'sparsyfed'")


# --- (a), (e) re-parameterisation ------------------------------------------------------------

def test_reparam_values_and_gradient_beta2():
    w = t(0.5, -2.0, 0.0, 1.0).requires_grad_()
    theta = reparam(w, 2.0)
    assert torch.equal(theta.detach(), t(0.25, -4.0, 0.0, 1.0))
    theta.sum().backward()
    assert torch.equal(w.grad, t(1.0, 4.0, 0.0, 2.0))


def test_reparam_gradient_beta125():
    w = t(0.5, -2.0, 0.0, 1.0).requires_grad_()
    reparam(w, 1.25).sum().backward()
    assert torch.allclose(w.grad, t(1.0511, 1.4865, 0.0, 1.25), atol=1e-4)
    assert w.grad[2] == 0.0
    # the general scaling: dL/dw = beta |w|^(beta-1) dL/dtheta
    g = torch.Generator().manual_seed(0)
    w = torch.randn(50, generator=g).requires_grad_()
    upstream = torch.randn(50, generator=g)
    (reparam(w, 1.25) * upstream).sum().backward()
    assert torch.allclose(w.grad, 1.25 * w.detach().abs().pow(0.25) * upstream, rtol=1e-6)


def test_reparam_round_trip_and_init():
    g = torch.Generator().manual_seed(1)
    w = torch.randn(100, generator=g)
    for beta in (1.0, 1.25, 2.0, 7.5):
        assert torch.allclose(inverse_reparam(reparam(w, beta), beta), w, rtol=1e-5, atol=1e-7)
        assert torch.allclose(reparam(inverse_reparam(w, beta), beta), w, rtol=1e-5, atol=1e-7)
    assert reparam(w, 1.0) is w
    assert torch.equal(inverse_reparam(t(0.0625, -0.25), 2.0), t(0.25, -0.5))
    state = {"a.weight": t(0.0625, -0.25), "a.bias": t(3.0)}
    omega = reparam_state(state, ["a.weight"], 2.0, inverse=True)
    assert torch.equal(omega["a.weight"], t(0.25, -0.5)) and omega["a.bias"] is state["a.bias"]
    assert torch.equal(reparam_state(omega, ["a.weight"], 2.0)["a.weight"], t(0.0625, -0.25))


def test_zero_weight_stays_zero_under_sgd_with_decay_and_momentum():
    w, velocity = t(0.5, 0.0, -0.3), torch.zeros(3)
    for _ in range(5):  # SGD, momentum 0.9, weight decay 1e-3 (torch.optim.SGD's update)
        leaf = w.clone().requires_grad_()
        reparam(leaf, 1.25).sum().backward()
        velocity = 0.9 * velocity + leaf.grad + 1e-3 * w
        w = w - 0.1 * velocity
    assert w[1].item() == 0.0 and w[0].item() != 0.5


# --- (c) activation pruning ------------------------------------------------------------------

def test_keep_top_fraction_ties_kept():
    x = t(1.0, -3.0, 2.0, 0.5, 2.0, -4.0).reshape(2, 3)
    # k = ceil(0.5 * 6) = 3 -> threshold 2, both 2s kept (>=)
    assert torch.equal(keep_top_fraction(x, 0.5), t(0.0, -3.0, 2.0, 0.0, 2.0, -4.0).reshape(2, 3))
    assert keep_top_fraction(x, 1.0) is x
    assert int((keep_top_fraction(x, 0.0) != 0).sum()) == 1  # at least one entry kept
    with pytest.raises(ValueError):
        keep_top_fraction(x, 1.5)


def linear_grads(fn, x, w, b, g_out):
    x, w, b = (v.clone().requires_grad_() for v in (x, w, b))
    out = fn(x, w, b)
    out.backward(g_out)
    return out.detach(), x.grad, w.grad, b.grad


def test_sparse_input_linear_note_example():
    x = t(0.1, -0.9, 0.3, 0.05, 0.2, 0.0, -0.4, 0.6).reshape(2, 4)
    w = t(0.0, 0.7, 0.0, 0.0).reshape(1, 4)
    keep = weight_keep(w)
    assert keep == 0.25
    g_out = t(1.0, 2.0).reshape(2, 1)
    out, gx, gw, gb = linear_grads(lambda a, b_, c: sparse_input_linear(a, b_, c, keep), x, w,
                                   t(0.1), g_out)
    dense = linear_grads(F.linear, x, w, t(0.1), g_out)
    assert torch.equal(out, dense[0]) and torch.equal(gx, dense[1]) and torch.equal(gb, dense[3])
    assert torch.allclose(gw, t(0.0, -0.9, 0.0, 1.2).reshape(1, 4))
    assert torch.allclose(dense[2], t(0.5, -0.9, -0.5, 1.25).reshape(1, 4))


def test_sparse_input_linear_hand_2x3():
    x = t(1.0, -3.0, 2.0, 0.5, 2.0, -4.0).reshape(2, 3)  # kept at 0.5: [[0,-3,2],[0,2,-4]]
    w = t(0.1, 0.2, 0.3, -0.1, 0.4, 0.5).reshape(2, 3)
    g_out = t(1.0, 2.0, -1.0, 1.0).reshape(2, 2)
    _, gx, gw, gb = linear_grads(lambda a, b_, c: sparse_input_linear(a, b_, c, 0.5), x, w,
                                 t(0.0, 0.0), g_out)
    assert torch.equal(gw, t(0.0, -5.0, 6.0, 0.0, -4.0, 0.0).reshape(2, 3))
    assert torch.equal(gx, g_out @ w) and torch.equal(gb, t(0.0, 3.0))


@pytest.mark.parametrize("keep", [0.3, 1.0])
def test_sparse_input_linear_matches_masked_input(keep):
    g = torch.Generator().manual_seed(2)
    x, w, b = torch.randn(5, 3, 7, generator=g), torch.randn(4, 7, generator=g), torch.randn(4)
    g_out = torch.randn(5, 3, 4, generator=g)
    out, gx, gw, gb = linear_grads(lambda a, b_, c: sparse_input_linear(a, b_, c, keep), x, w, b,
                                   g_out)
    dense = linear_grads(F.linear, x, w, b, g_out)
    masked = linear_grads(F.linear, keep_top_fraction(x, keep), w, b, g_out)
    assert torch.equal(out, dense[0])
    assert torch.allclose(gx, dense[1], rtol=1e-6, atol=1e-6)
    assert torch.allclose(gb, dense[3], rtol=1e-6, atol=1e-6)
    assert torch.allclose(gw, masked[2], rtol=1e-5, atol=1e-6)
    if keep == 1.0:
        assert torch.allclose(gw, dense[2], rtol=1e-6, atol=1e-6)
    else:
        assert not torch.allclose(gw, dense[2])


@pytest.mark.parametrize("keep", [0.2, 1.0])
@pytest.mark.parametrize("conf", [dict(), dict(stride=2, padding=1, dilation=2, groups=2)])
def test_sparse_input_conv2d_matches_masked_input(keep, conf):
    g = torch.Generator().manual_seed(3)
    groups = conf.get("groups", 1)
    x = torch.randn(2, 4, 9, 9, generator=g)
    w = torch.randn(6, 4 // groups, 3, 3, generator=g)
    b = torch.randn(6, generator=g)

    def run(fn, inp):
        xi, wi, bi = (v.clone().requires_grad_() for v in (inp, w, b))
        out = fn(xi, wi, bi)
        out.backward(torch.ones_like(out) * torch.linspace(-1, 1, out.numel()).view_as(out))
        return out.detach(), xi.grad, wi.grad, bi.grad

    sparse = run(lambda a, b_, c: sparse_input_conv2d(a, b_, c, keep, **conf), x)
    dense = run(lambda a, b_, c: F.conv2d(a, b_, c, **conf), x)
    masked = run(lambda a, b_, c: F.conv2d(a, b_, c, **conf), keep_top_fraction(x, keep))
    assert torch.equal(sparse[0], dense[0])
    assert torch.allclose(sparse[1], dense[1], rtol=1e-6, atol=1e-6)
    assert torch.allclose(sparse[3], dense[3], rtol=1e-6, atol=1e-6)
    assert torch.allclose(sparse[2], masked[2], rtol=1e-5, atol=1e-5)
    assert torch.allclose(sparse[2], dense[2], rtol=1e-5, atol=1e-5) == (keep == 1.0)


# --- the forward helper on mnist_net --------------------------------------------------------

def mnist_setup(density):
    model = build_model("mnist_net", 10, 1, 28, seed=0)
    names = prunable_names(model)
    params = dict(model.named_parameters())
    if density < 1.0:
        prune_to_density({n: params[n] for n in names}, names, density).apply(model)
    x = torch.randn(4, 1, 28, 28, generator=torch.Generator().manual_seed(4))
    y = torch.tensor([0, 3, 5, 9])
    return model, names, x, y


def theta_copy(model, names, beta):
    ref = copy.deepcopy(model)
    params = dict(ref.named_parameters())
    with torch.no_grad():
        for n in names:
            params[n].copy_(reparam(params[n], beta))
    return ref


@pytest.mark.parametrize("train", [True, False])
def test_forward_helper_logits_equal_reparam_model(train):
    model, names, x, _ = mnist_setup(0.3)
    opts = SparsyFedOptions()
    ref = theta_copy(model, names, opts.beta)
    model.train(train)
    ref.train(train)
    with SparsyFedForward(model, names, opts) as helper:
        logits = model(x)
    assert torch.equal(logits, ref(x))
    assert not torch.equal(model(x), logits)  # forward restored: raw w again
    assert "forward" not in model.conv1.__dict__
    params = dict(model.named_parameters())
    per_layer = [weight_keep(params[n]) for n in names]  # reparam keeps the zeros
    assert helper.mean_keep() == (pytest.approx(sum(per_layer) / len(per_layer)) if train else 1.0)


def test_forward_helper_dense_gradient_chain_rule():
    model, names, x, y = mnist_setup(1.0)  # no zeros: keep = 1, exact dense gradients
    opts = SparsyFedOptions()
    ref = theta_copy(model, names, opts.beta)
    with SparsyFedForward(model, names, opts):
        F.cross_entropy(model(x), y).backward()
    F.cross_entropy(ref(x), y).backward()
    params, ref_params = dict(model.named_parameters()), dict(ref.named_parameters())
    for n, p in params.items():
        expected = ref_params[n].grad
        if n in names:
            expected = opts.beta * p.detach().abs().pow(opts.beta - 1) * expected
        assert torch.allclose(p.grad, expected, rtol=1e-4, atol=1e-7), n


def test_forward_helper_sparse_gradients():
    model, names, x, y = mnist_setup(0.2)
    opts = SparsyFedOptions()
    seen = {}
    model.fc1.register_forward_pre_hook(lambda m, args: seen.update(x=args[0].detach()))

    def grad_hook(module, args, out):
        out.register_hook(lambda g: seen.update(g=g))

    model.fc1.register_forward_hook(grad_hook)
    with SparsyFedForward(model, names, opts):
        F.cross_entropy(model(x), y).backward()
    w = model.fc1.weight.detach()
    keep = weight_keep(reparam(w, opts.beta))
    x_sparse = keep_top_fraction(seen["x"], keep)
    assert 0 < int((x_sparse != 0).sum()) < int((seen["x"] != 0).sum())  # inputs were dropped
    grad_theta = seen["g"].t() @ x_sparse
    expected = opts.beta * w.abs().pow(opts.beta - 1) * grad_theta
    assert torch.allclose(model.fc1.weight.grad, expected, rtol=1e-5, atol=1e-7)
    for n, p in model.named_parameters():
        if n in names:
            assert torch.all(p.grad[p.detach() == 0] == 0), n  # no regrowth on the client
    # without activation pruning: the dense chain rule again
    dense = copy.deepcopy(model)
    dense.zero_grad()
    with SparsyFedForward(dense, names, SparsyFedOptions(activation_pruning=False)):
        F.cross_entropy(dense(x), y).backward()
    assert not torch.allclose(dense.fc1.weight.grad, model.fc1.weight.grad)


def test_forward_helper_rejects_other_parameters():
    model = build_model("mnist_net", 10, 1, 28, seed=0)
    with pytest.raises(ValueError):
        SparsyFedForward(model, ["conv1.bias"], SparsyFedOptions())


# --- (b) client prune, (d) server average ----------------------------------------------------

def test_prune_note_example_global_vs_layer():
    weights = {"A": t(0.9, 0.8, 0.3, 0.0), "B": t(-0.6, 0.2, 0.01, 0.1)}
    m = prune_to_density(weights, ["A", "B"], 0.5)
    assert m["A"].tolist() == [True, True, True, False]
    assert m["B"].tolist() == [True, False, False, False]
    m = prune_to_density(weights, ["A", "B"], 0.5, scope="layer")
    assert m["A"].tolist() == [True, True, False, False]
    assert m["B"].tolist() == [True, True, False, False]
    # global scope keeps >= 1 weight per layer (select_mask; the code could empty B)
    m = prune_to_density({"A": t(10, 10, 10, 10), "B": t(0.1, 0.2)}, ["A", "B"], 0.5)
    assert m["A"].tolist() == [True, True, False, False] and m["B"].tolist() == [False, True]


@pytest.mark.parametrize("density", [0.05, 0.5, 1.0])
def test_prune_counts(density):
    g = torch.Generator().manual_seed(5)
    shapes = {"conv1.weight": (6, 3, 5, 5), "conv2.weight": (16, 6, 5, 5), "fc1.weight": (120, 400),
              "fc2.weight": (10, 120)}
    weights = {n: torch.randn(s, generator=g) for n, s in shapes.items()}
    names = list(weights)
    total = sum(w.numel() for w in weights.values())
    m = prune_to_density(weights, names, density)
    assert m.num_active() == round(density * total)
    kept = torch.cat([weights[n].abs()[m[n]] for n in names])
    dropped = torch.cat([weights[n].abs()[~m[n]] for n in names])
    assert dropped.numel() == 0 or kept.min() >= dropped.max()
    m = prune_to_density(weights, names, density, scope="layer")
    assert all(abs(int(m[n].sum()) - density * weights[n].numel()) <= 1 for n in names)


def test_zero_average_note_example():
    states = [{"w": t(0.4, 0.0, 0.2), "b": t(1.0)}, {"w": t(0.2, 0.6, 0.0), "b": t(3.0)}]
    masks = [Mask({"w": torch.tensor([True, False, True])}),
             Mask({"w": torch.tensor([True, True, False])})]
    avg, union = zero_average(states, masks, [10, 10], ["w"])
    assert torch.allclose(avg["w"], t(0.3, 0.3, 0.1)) and torch.equal(avg["b"], t(2.0))
    assert union["w"].tolist() == [True, True, True]
    holders, _ = sparse_average(states, masks, [10, 10], ["w"])
    assert torch.allclose(holders["w"], t(0.3, 0.6, 0.2))
    with pytest.raises(ValueError):
        zero_average([], [], [], ["w"])


# --- the federated method: client step and server strategy ------------------------------------

def sf_exp(*overrides: str) -> Experiment:
    """4 iid clients of 40 synthetic 28x28 images (no real data), mnist_net, sparsity 0.7."""
    return synthetic_experiment(["strategy=sparsyfed", "clients_per_round=2",
                                "rounds=5", "batch_size=16", "local_epochs=1",
                                "augment=false", "sparsity=0.7", *overrides])


def sf_strategy(exp):
    strategy = SparsyFed(exp, torch.device("cpu"), {})
    strategy.initialize(None)  # no grid needed: round 1 is dense
    return strategy


def global_model(exp, strategy):
    model = exp.new_model()
    model.load_state_dict(strategy.state, strict=False)
    return model


def test_bad_options_exit_with_one_line():
    with pytest.raises(ConfigError, match=r"^strategy_options.nope is invalid"):
        load_config("feddst_mnist", ["strategy=sparsyfed", "strategy_options.nope=1"])
    with pytest.raises(ConfigError, match=r"^strategy_options.beta"):
        load_config("feddst_mnist", ["strategy=sparsyfed", "strategy_options.beta=0.5"])
    with pytest.raises(ConfigError):  # an option of another method
        load_config("feddst_mnist", ["strategy=sparsyfed", "strategy_options.vote_gradient=epoch"])


def test_initialize_keeps_the_model_init_and_is_dense():
    exp = sf_exp()
    strategy = sf_strategy(exp)
    init = float_state(exp.new_model())
    assert strategy.mask.density() == 1.0 and strategy.mask_version == 1
    for n, t_ in init.items():
        if n in exp.masked_names:
            assert torch.allclose(strategy.state[n], inverse_reparam(t_, 1.25))
            assert torch.allclose(strategy.eval_state()[n], t_, rtol=1e-5, atol=1e-7)
        else:
            assert torch.equal(strategy.state[n], t_) and strategy.eval_state()[n] is strategy.state[n]
    n_masked = sum(init[n].numel() for n in exp.masked_names)
    assert strategy.reply_budget() == round(0.3 * n_masked) + len(exp.masked_names)


def test_client_step_prunes_to_density_and_keeps_zeros():
    exp = sf_exp()
    strategy = sf_strategy(exp)
    names = list(exp.masked_names)
    n_masked = strategy.n_masked
    # round 1: dense model, no zeros in theta -> no activation is dropped
    model = global_model(exp, strategy)
    got = SparsyFedClient().train(exp, model, strategy.mask, 1, 1, {"round": 1}, {})
    assert got.metrics == {"activation_keep": 1.0}
    assert got.mask.num_active() == round(0.3 * n_masked) <= strategy.reply_budget()
    assert got.mask_changes == n_masked - got.mask.num_active()
    params = dict(model.named_parameters())
    for n in names:
        assert not bool(params[n][~got.mask[n]].any())
        kept, dropped = params[n].detach().abs()[got.mask[n]], params[n].detach().abs()[~got.mask[n]]
        assert kept.min() > 0 and (dropped.numel() == 0 or kept.min() >= dropped.max())
    assert got.num_examples == 40 and got.train_loss > 0
    # a sparse received mask: zeros stay zero, the new support lies inside it, and every
    # layer's kept input fraction is its density (constant: no weight becomes exactly 0)
    received = prune_to_density({n: params[n] for n in names}, names, 0.5)
    start = global_model(exp, strategy)
    received.apply(start)
    before = {n: p.detach().clone() for n, p in start.named_parameters()}
    second = SparsyFedClient().train(exp, start, received, 2, 2, {"round": 2}, {})
    after = dict(start.named_parameters())
    for n in names:
        assert bool((second.mask[n] <= received[n]).all())
        assert not bool(after[n][~received[n]].any())
    assert any(not torch.equal(after[n], before[n]) for n in names)
    layer = [float(received[n].float().mean()) for n in names]
    assert second.metrics["activation_keep"] == pytest.approx(sum(layer) / len(layer))
    assert second.mask.num_active() == round(0.3 * n_masked)
    assert second.mask_changes == received.num_active() - second.mask.num_active()


def test_client_step_without_reparam_trains_like_client_update():
    exp = sf_exp("strategy_options.beta=1", "strategy_options.activation_pruning=false",
                 "sparsity=0.0")
    strategy = sf_strategy(exp)
    model, plain = global_model(exp, strategy), global_model(exp, strategy)
    got = SparsyFedClient().train(exp, model, strategy.mask, 1, 3, {"round": 3}, {})
    ref = client_update(exp, plain, strategy.mask, 1, 3)
    # the same steps up to float rounding (the custom autograd functions' own matmuls)
    assert got.train_loss == pytest.approx(ref.train_loss, rel=1e-6)
    assert got.mask_changes == 0 and got.mask == strategy.mask
    assert all(torch.allclose(a, b, rtol=1e-4, atol=1e-6)
               for a, b in zip(model.state_dict().values(), plain.state_dict().values()))


def sf_replies(strategy, seed, density):
    """Three clients (weights 40, 20, 40) with random weights on random supports (about
    `density`) inside the global mask, and their activation_keep metric."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for pid, (n, keep) in enumerate(((40.0, 0.5), (20.0, 0.25), (40.0, 0.75))):
        mask = Mask({k: (torch.rand(strategy.shapes[k], generator=gen) < density) & strategy.mask[k]
                     for k in strategy.masked})
        state = {k: torch.randn(s, generator=gen) * (mask[k] if k in mask else 1)
                 for k, s in strategy.shapes.items()}
        out.append(Reply(pid, state, mask, n, n, {"activation_keep": keep}, {}))
    return out


def sf_round(strategy, server_round, replies):
    strategy.round_info = {"clients": [r.pid for r in replies], "draws": {r.pid: 1 for r in replies}}
    strategy.replies = replies
    average, union = strategy.average([r.state for r in replies], [r.mask for r in replies],
                                      [r.weight for r in replies])
    strategy.server_update(server_round, average, union)


@pytest.mark.parametrize("rule", ["zeros", "holders"])
def test_server_update_averages_on_the_union(rule):
    strategy = sf_strategy(sf_exp(f"strategy_options.average={rule}"))
    masked = strategy.masked
    replies = sf_replies(strategy, 0, 0.3)
    previous = {n: t_.clone() for n, t_ in strategy.state.items()}
    states, masks = [r.state for r in replies], [r.mask for r in replies]
    rule_fn = zero_average if rule == "zeros" else sparse_average
    want, union = rule_fn(states, masks, [40.0, 20.0, 40.0], masked)
    sf_round(strategy, 1, replies)
    assert strategy.mask == union and strategy.mask_version == 2
    assert all(torch.equal(strategy.state[n], want[n]) for n in strategy.shapes)
    extra = strategy.round_info["extra"]
    assert extra["union_density"] == union.density() < 1.0
    assert extra["regrown"] == 0  # the dense init had no zeros
    top_before = prune_to_density(previous, masked, 0.3)
    top_now = prune_to_density(want, masked, 0.3)
    assert extra["topk_regrown"] == sum(int((top_now[n] & ~top_before[n]).sum()) for n in masked) > 0
    assert extra["activation_keep"] == pytest.approx(0.5)
    # honest replies (supports inside the global one) regrow nothing
    sf_round(strategy, 2, sf_replies(strategy, 1, 0.3))
    assert strategy.round_info["extra"]["regrown"] == 0
    # the counter: 5 weights zero in the previous global state, non-zero in the replies
    strategy.state[masked[0]].view(-1)[:5] = 0.0
    third = sf_replies(strategy, 2, 0.3)
    for r in third:
        r.mask[masked[0]].view(-1)[:5] = True
        r.state[masked[0]].view(-1)[:5] = 1.0
    sf_round(strategy, 3, third)
    assert strategy.round_info["extra"]["regrown"] == 5


def test_checkpoint_resumes_exactly():
    exp = sf_exp()
    first = sf_strategy(exp)
    sf_round(first, 1, sf_replies(first, 0, 0.3))
    saved = first.state_dict()
    second = SparsyFed(exp, torch.device("cpu"), {})
    second.load_state_dict({**saved, "tensors": {k: v.clone() for k, v in saved["tensors"].items()}})
    sf_round(first, 2, sf_replies(first, 1, 0.3))
    sf_round(second, 2, sf_replies(second, 1, 0.3))
    assert first.mask == second.mask and first.mask_version == second.mask_version == 3
    assert all(torch.equal(first.state[n], second.state[n]) for n in first.shapes)
    assert first.round_info["extra"] == second.round_info["extra"]
