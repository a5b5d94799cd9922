"""PruneFL: its pure rules (fedsparse/methods/prunefl.py: the adaptive reconfiguration on the method
note's hand-computed examples and against a literal port of the official heap search, the cost
coefficients, the dtp decay, the squared-gradient accumulator, the schedule and the options), its
client step (fedsparse/methods/prunefl_client.py) and its server logic
(fedsparse/fl/strategies/prunefl.py) on a small synthetic 28x28 task with mnist_net (no Ray)."""

from __future__ import annotations

import copy
import heapq

import numpy as np
import pytest
import torch

from fedsparse.errors import ConfigError
from fedsparse.experiment import Experiment
from fedsparse.fl.strategies.base import Reply
from fedsparse.fl.strategies.prunefl import PruneFL
from fedsparse.methods.prunefl import (COLLECT, INITIAL_STAGE, SQ_GRAD, SQ_GRAD_REST,
                                       PruneFLOptions, SquaredGradients, adaptive_mask,
                                       cost_coefficients, decay, density_cap, layer_coefficients,
                                       position_bits, reconfigures, round_constant)
from fedsparse.methods.prunefl_client import PruneFLClient
from fedsparse.plugin_options import build_options
from fedsparse.sparse.cost import output_positions
from fedsparse.sparse.mask import Mask
from fedsparse.train.client_update import client_update
from synthetic import synthetic_experiment

T = torch.tensor


def _bool(rows: list) -> torch.Tensor:
    return T(rows, dtype=torch.bool)


def test_single_layer_example() -> None:
    """Note section 3: kept {(0,0),(0,1),(1,0)}, ratio 7/4; (0,2) added (16/5), 3 <= 3.2 stops."""
    w = {"a": T([[0.9, -0.1, 0.0], [0.5, 0.0, 0.05]])}
    m = {"a": _bool([[1, 1, 0], [1, 0, 1]])}
    g = {"a": T([[4.0, 1.0, 9.0], [2.0, 0.5, 3.0]])}
    new = adaptive_mask(m, w, g, {"a": 1.0}, const=1.0, dtp=0.25)
    assert torch.equal(new["a"], _bool([[1, 1, 1], [1, 0, 0]]))
    assert torch.equal(m["a"], _bool([[1, 1, 0], [1, 0, 1]]))  # input untouched


def test_single_layer_example_capped() -> None:
    """max_active = 3 = the kept count: nothing is grown."""
    w = {"a": T([[0.9, -0.1, 0.0], [0.5, 0.0, 0.05]])}
    m = {"a": _bool([[1, 1, 0], [1, 0, 1]])}
    g = {"a": T([[4.0, 1.0, 9.0], [2.0, 0.5, 3.0]])}
    new = adaptive_mask(m, w, g, {"a": 1.0}, const=1.0, dtp=0.25, max_active=3)
    assert torch.equal(new["a"], _bool([[1, 1, 0], [1, 0, 0]]))
    assert adaptive_mask(m, w, g, {"a": 1.0}, 1.0, 0.25, max_active=4)["a"].sum() == 4


def test_cross_layer_example() -> None:
    """Note section 3, second example: start num 10, den 10 (const 5 + A 1*1 + B 4*1, kept g^2 2 +
    extra 8); candidates A: 3, 1.2 (coeff 1), B: 8 (coeff 4). A:3 then B:8 (key 2 > 13/11), then
    A:1.2 < 21/15 stops although 1.2 > the initial ratio 1."""
    w = {"A": T([1.0, 0.0, 0.0]), "B": T([1.0, 0.0])}
    m = {"A": _bool([1, 0, 0]), "B": _bool([1, 0])}
    g = {"A": T([2.0, 3.0, 1.2]), "B": T([0.0, 8.0])}
    new = adaptive_mask(m, w, g, {"A": 1.0, "B": 4.0}, const=5.0, dtp=0.0, extra_numerator=8.0)
    assert torch.equal(new["A"], _bool([1, 1, 0]))
    assert torch.equal(new["B"], _bool([1, 1]))


def _official(mask, weights, sq_grad, coeff, const, dtp, extra, max_active):
    """A literal port of control/algorithm.py (process_layer + architecture_search) with the cap
    checked as `num >= max` (the official `>` adds one more)."""
    names = list(mask)
    num, den, lists, new = extra, const, [], {}
    for n in names:
        iu = mask[n]
        k = int(iu.sum())
        thr = torch.sort(weights[n].abs()[iu])[0][int(dtp * k)]
        keep = (weights[n].abs() >= thr) & iu
        num += sq_grad[n].double()[keep].sum().item()
        den += coeff[n] * int(keep.sum())
        tba = ~keep
        vals, idx = sq_grad[n].double()[tba], tba.nonzero()
        s, perm = torch.sort(vals, descending=True, stable=True)
        lists.append((s.tolist(), idx[perm]))
        new[n] = keep.clone()
    count = sum(int(v.sum()) for v in new.values())
    its = [iter(v) for v, _ in lists]
    heap = [(-next(its[i]) / coeff[n], i) for i, n in enumerate(names) if lists[i][0]]
    heapq.heapify(heap)
    added = [0] * len(names)
    while heap and -heap[0][0] > num / den:
        if max_active is not None and count >= max_active:
            break
        count += 1
        val, i = -heap[0][0], heap[0][1]
        num += val * coeff[names[i]]
        den += coeff[names[i]]
        added[i] += 1
        if added[i] == len(lists[i][0]):
            heapq.heappop(heap)
        else:
            heapq.heapreplace(heap, (-next(its[i]) / coeff[names[i]], i))
    for i, n in enumerate(names):
        new[n][tuple(lists[i][1][:added[i]].t())] = True
    return new


@pytest.mark.parametrize("seed", range(4))
def test_matches_official_heap_search(seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    shapes = {"c": (6, 3, 3, 3), "f": (20, 30), "o": (5, 20)}
    w = {n: torch.randn(s, generator=gen) for n, s in shapes.items()}
    m = {n: torch.rand(s, generator=gen) < 0.3 for n, s in shapes.items()}
    g = {n: torch.rand(s, generator=gen) ** 4 for n, s in shapes.items()}
    coeff = {"c": 3.0, "f": 1.0, "o": 1.5}
    cases = [(50.0, 0.3, 2.0, None), (10.0, 0.1, 0.0, 300), (0.5, 0.0, 5.0, None)]
    for const, dtp, extra, cap in cases:
        got = adaptive_mask(m, w, g, coeff, const, dtp, extra, cap)
        want = _official(m, w, g, coeff, const, dtp, extra, cap)
        for n in shapes:
            assert torch.equal(got[n], want[n]), (n, const, dtp)


def test_invariants_per_layer() -> None:
    """At most int(dtp * active) leave a layer by magnitude; the largest active magnitudes stay;
    added weights are never more than max_active allows; deterministic."""
    gen = torch.Generator().manual_seed(7)
    w = {n: torch.randn(40, 10, generator=gen) for n in ("a", "b")}
    m = {n: torch.rand(40, 10, generator=gen) < 0.5 for n in ("a", "b")}
    g = {n: torch.rand(40, 10, generator=gen) for n in ("a", "b")}
    coeff = {"a": 1.0, "b": 2.0}
    dtp = 0.3
    new = adaptive_mask(m, w, g, coeff, 1.0, dtp, extra_numerator=1e6)  # ratio too high to grow
    for n in m:
        active = int(m[n].sum())
        assert int((m[n] & ~new[n]).sum()) == int(dtp * active)
        assert not bool((new[n] & ~m[n]).any())
        top = torch.topk(w[n].abs()[m[n]], active - int(dtp * active)).values
        assert torch.equal(torch.sort(w[n].abs()[new[n]]).values, torch.sort(top).values)
    grown = adaptive_mask(m, w, g, coeff, const=1.0, dtp=dtp)
    assert grown.num_active() > new.num_active() + 5
    assert all(torch.equal(grown[n], adaptive_mask(m, w, g, coeff, 1.0, dtp)[n]) for n in m)
    capped = adaptive_mask(m, w, g, coeff, const=1.0, dtp=dtp, max_active=new.num_active() + 5)
    assert capped.num_active() == new.num_active() + 5
    assert all(bool((capped[n] <= grown[n]).all()) for n in m)  # a prefix of the same order
    below = adaptive_mask(m, w, g, coeff, const=1.0, dtp=dtp, max_active=10)
    assert below.num_active() == new.num_active()  # the cap only limits growth


def test_edge_cases() -> None:
    w = {"a": T([0.5, 0.2]), "b": T([0.3, 0.1])}
    g = {"a": T([1.0, 2.0]), "b": T([4.0, 0.0])}
    # no active weights and const 0 (0/0 = 0): every candidate with g^2 > 0 beats the ratio at first
    empty = {"a": _bool([0, 0]), "b": _bool([0, 0])}
    new = adaptive_mask(empty, w, g, {"a": 1.0, "b": 1.0}, const=0.0, dtp=0.3)
    assert torch.equal(new["b"], _bool([1, 0]))  # 4 added (4/1); then a's 2 < 4 stops
    assert torch.equal(new["a"], _bool([0, 0]))
    # fully dense with dtp 0: no candidates at all
    full = {"a": _bool([1, 1]), "b": _bool([1, 1])}
    new = adaptive_mask(full, w, g, {"a": 1.0, "b": 1.0}, const=1.0, dtp=0.0)
    assert new.num_active() == 4
    # ties at the magnitude threshold are kept (|w| >= thr)
    tie = adaptive_mask({"a": _bool([1, 1])}, {"a": T([0.2, -0.2])}, {"a": T([0.0, 0.0])},
                        {"a": 1.0}, const=1.0, dtp=0.5)
    assert torch.equal(tie["a"], _bool([1, 1]))
    # const 0, nothing kept, only an unmasked layer's g^2: ratio inf, nothing can be added
    none = adaptive_mask(empty, w, g, {"a": 1.0, "b": 1.0}, 0.0, 0.3, extra_numerator=1.0)
    assert none.num_active() == 0
    assert adaptive_mask({}, {}, {}, {}, 1.0, 0.3).num_active() == 0
    with pytest.raises(ValueError, match="coeff"):
        adaptive_mask(full, w, g, {"a": 0.0, "b": 1.0}, 1.0, 0.0)


def test_cost_coefficients_two_layers() -> None:
    """sizes 10 and 30, positions 7 and 1: mean 100/40 = 2.5, compute 2.8 and 0.4 (weighted mean
    1); comm (32 + 8) / 32 = 1.25, times comm_weight 2."""
    c = cost_coefficients({"a": torch.Size([2, 5]), "b": torch.Size([6, 5])}, {"a": 7, "b": 1},
                          value_bits=32, position_bits=8.0, compute_weight=1.0, comm_weight=2.0)
    assert c == pytest.approx({"a": 5.3, "b": 2.9})
    only = cost_coefficients({"a": torch.Size([2, 5]), "b": torch.Size([6, 5])}, {"a": 7, "b": 1},
                             32, 8.0, compute_weight=1.0, comm_weight=0.0)
    assert (10 * only["a"] + 30 * only["b"]) / 40 == pytest.approx(1.0)
    assert cost_coefficients({"a": torch.Size([3])}, {"a": 4}, 16, 0.0, 0.0, 1.0) == {"a": 0.5}


def test_decay() -> None:
    assert decay(0.3, 10000.0, 0) == 0.3
    assert decay(0.3, 10000.0, 10000) == pytest.approx(0.15)
    assert decay(0.3, 2.0, 4) == pytest.approx(0.075)


def test_squared_gradients() -> None:
    acc = SquaredGradients(["a", "b"])
    assert acc.total == {}
    ga = torch.tensor([1.0, -2.0])
    acc.add({"a": ga, "b": torch.tensor([[3.0]]), "other": torch.ones(1)})
    acc.add({"a": torch.tensor([2.0, 0.5]), "b": torch.tensor([[-1.0]])}, weight=3.0)
    ga.zero_()  # never aliased
    total = acc.total
    assert set(total) == {"a", "b"}
    assert torch.equal(total["a"], torch.tensor([13.0, 4.75]))
    assert torch.equal(total["b"], torch.tensor([[12.0]]))
    total["a"].zero_()  # a copy
    assert acc.total["a"][0] == 13.0
    with pytest.raises(KeyError):
        acc.add({"a": torch.ones(2)})


def test_options() -> None:
    o = build_options(PruneFLOptions, {}, "strategy_options", "strategy 'prunefl'")
    assert (o.adjust_every, o.adjust_until, o.max_dec, o.max_dec_half_life, o.initial, o.ip_rounds,
            o.ip_steps, o.max_density, o.time_constant) == (None, None, 0.3, 10000.0, "client", 5,
                                                            None, None, 0.14)
    assert build_options(PruneFLOptions, {"max_density": 0.1, "initial": "criterion"},
                         "strategy_options", "prunefl").max_density == 0.1
    assert build_options(PruneFLOptions, {"adjust_every": 50, "adjust_until": 0},
                         "strategy_options", "prunefl").adjust_until == 0
    for bad in ({"max_dec": 1.0}, {"adjust_every": 0}, {"adjust_until": -1}, {"initial": "server"},
                {"max_density": 0.0}, {"compute_weight": 0.0, "comm_weight": 0.0}):
        with pytest.raises(ConfigError):
            build_options(PruneFLOptions, bad, "strategy_options", "prunefl")



def test_schedule_density_cap_and_position_bits() -> None:
    assert [t for t in range(1, 12) if reconfigures(t, 3, 8)] == [1, 4, 7]
    assert not any(reconfigures(t, 1, 1) for t in range(1, 5))  # until 1: never (as FedDST)
    assert density_cap(PruneFLOptions(), 0.8) == pytest.approx(0.2)
    assert density_cap(PruneFLOptions(max_density=0.5), 0.8) == 0.5
    gen = torch.Generator().manual_seed(0)
    mask = Mask({"a": torch.rand(4000, generator=gen) < 0.3, "b": torch.rand(8, 500, generator=gen) < 0.3})
    assert 1.0 <= position_bits(mask, "bitmap") < 1.05  # a bit per weight + tag/header bytes
    assert position_bits(mask, "auto") <= position_bits(mask, "bitmap") + 1e-9
    assert position_bits(Mask({}), "bitmap") == 0.0
    assert round_constant({"a": 2.0, "b": 0.5}, mask, 0.1) == pytest.approx(0.1 * (2 * 4000 + 0.5 * 4000))


# ------------------------------------------------------------------ client step and server logic
def _exp(*overrides: str) -> Experiment:
    """4 iid clients of 40 synthetic 28x28 images (no real data), mnist_net, sparsity 0.7."""
    return synthetic_experiment(["strategy=prunefl", "clients_per_round=2",
                                "rounds=10", "readjust_every=3",
                                "readjust_until=8", "batch_size=16", "local_epochs=1",
                                "augment=false", "sparsity=0.7", *overrides])


def _random_mask(exp: Experiment, density: float, seed: int) -> Mask:
    gen = torch.Generator().manual_seed(seed)
    params = dict(exp.new_model().named_parameters())
    return Mask({n: torch.rand(params[n].shape, generator=gen) < density for n in exp.masked_names})


def test_client_round_collects_squared_gradients_without_changing_training() -> None:
    """One local step over all 40 images (batch 64): sq_grad = 40 * g^2 of the mean loss at the
    starting weights, in full for the masked tensors; the training is client_update's."""
    exp = _exp("batch_size=64")
    model = exp.new_model()
    mask = _random_mask(exp, 0.2, 1)
    mask.apply(model)
    start, plain = copy.deepcopy(model), copy.deepcopy(model)
    got = PruneFLClient().train(exp, model, mask, 0, 4, {"round": 4, COLLECT: True}, {})
    ref = client_update(exp, plain, mask, 0, 4)
    assert got.train_loss == ref.train_loss and got.mask is mask and got.mask_changes == 0
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), plain.state_dict().values()))
    x, y = exp.client_train(0)
    torch.nn.functional.cross_entropy(start(x), y).backward()
    params = dict(start.named_parameters())
    want = torch.cat([40 * params[n].grad.reshape(-1) ** 2 for n in exp.masked_names]).numpy()
    assert got.upload[SQ_GRAD].dtype == np.float32 and got.upload[SQ_GRAD].shape == want.shape
    np.testing.assert_allclose(got.upload[SQ_GRAD], want, rtol=1e-3, atol=1e-9)
    assert (want[~torch.cat([mask[n].reshape(-1) for n in exp.masked_names]).numpy()] > 0).any()
    rest = [n for n in params if n not in exp.masked_names]
    np.testing.assert_allclose(got.upload[SQ_GRAD_REST],
                               [float((40 * params[n].grad ** 2).sum()) for n in rest], rtol=1e-3)
    n_params = sum(p.numel() for p in params.values())
    assert got.metrics == {"sq_grad_steps": 1.0, "sq_grad_memory_bytes": 4.0 * n_params}
    quiet = PruneFLClient().train(exp, copy.deepcopy(start), mask, 0, 5, {"round": 5}, {})
    assert quiet.upload == {} and quiet.metrics["sq_grad_steps"] == 0.0


def test_initial_pruning_at_one_client() -> None:
    """From the dense model, each adaptive step removes int(dtp * active) of every layer by
    magnitude; growth is capped at 1 - sparsity = 0.3 < 0.49 so nothing comes back."""
    exp = _exp("strategy_options.ip_rounds=2", "strategy_options.ip_steps=3")
    instructions = {"round": 0, "mask_version": -1, "stage": INITIAL_STAGE}
    model = exp.new_model()
    got = PruneFLClient().train(exp, model, Mask.ones(model, exp.masked_names), 1, 0, instructions, {})
    params = dict(model.named_parameters())
    for n in exp.masked_names:
        size = params[n].numel()
        first = size - int(0.3 * size)
        assert int(got.mask[n].sum()) == first - int(decay(0.3, 10000.0, 1) * first), n
        assert not bool(params[n][~got.mask[n]].any())  # pruned weights are zero
    assert got.mask_changes == got.mask.numel() - got.mask.num_active()
    assert got.metrics == {"ip_steps": 6.0} and got.num_examples == 40


def _reply(exp: Experiment, pid: int, state: dict, mask: Mask, sq: dict, rest: list) -> Reply:
    flat = np.concatenate([sq[n].reshape(-1).numpy() for n in exp.masked_names]).astype(np.float32)
    return Reply(pid, state, mask, 40.0, 40.0, {}, {SQ_GRAD: flat,
                                                   SQ_GRAD_REST: np.asarray(rest, np.float32)})


def test_server_reconfiguration() -> None:
    """Round 1 reconfigures: the clients' g^2 summed (client 1 drawn twice counts twice; client 2's
    malformed upload is left out), the rule run on the average with dtp(0), coefficients from the
    cost model and the cap 0.3; an inactive weight with a huge g^2 is grown with value 0. Round 2
    does not reconfigure."""
    exp = _exp()
    strategy = PruneFL(exp, torch.device("cpu"), {})
    assert [t for t in range(1, 11) if strategy.client_instructions(t)[COLLECT]] == [1, 4, 7]
    mask = _random_mask(exp, 0.3, 2)
    strategy.set_mask(mask)
    average = {n: t * mask[n] if n in mask else t for n, t in strategy.state.items()}
    gen = torch.Generator().manual_seed(3)
    shapes = {n: strategy.shapes[n] for n in exp.masked_names}
    sq = [{n: torch.rand(s, generator=gen) for n, s in shapes.items()} for _ in range(2)]
    planted = (~mask["fc2.weight"]).nonzero()[0]
    sq[1]["fc2.weight"][tuple(planted)] = 1e6
    n_rest = 4  # conv1/conv2/fc1/fc2 biases
    replies = [_reply(exp, 0, average, mask, sq[0], [1.0] * n_rest),
               _reply(exp, 1, average, mask, sq[1], [2.0] * n_rest),
               _reply(exp, 2, average, mask, sq[1], [1.0] * (n_rest + 1))]
    strategy.round_info = {"clients": [0, 1, 2], "draws": {0: 1, 1: 2, 2: 1}}
    strategy.replies = replies
    strategy.server_update(1, dict(average), mask)
    coeff = layer_coefficients(output_positions(exp.new_model(), (1, 28, 28)), mask,
                               exp.cfg.comm.codec, exp.cfg.comm.value_dtype, strategy.options)
    want = adaptive_mask(mask, {n: average[n] for n in shapes},
                         {n: sq[0][n].double() + 2 * sq[1][n].double() for n in shapes}, coeff,
                         round_constant(coeff, mask, 0.14), 0.3, extra_numerator=4.0 + 2 * 8.0,
                         max_active=int(0.3 * mask.numel()))
    assert strategy.mask == want and strategy.mask_version == 2
    assert strategy.round_info["extra"]["prunefl_reconfigured"] == 1
    assert bool(strategy.mask["fc2.weight"][tuple(planted)])
    grown = {n: strategy.mask[n] & ~mask[n] for n in shapes}
    assert sum(int(g.sum()) for g in grown.values()) > 0
    assert mask.num_active() > strategy.mask.num_active() > int(0.7 * mask.num_active())
    assert strategy.mask.num_active() <= int(0.3 * mask.numel())
    for n in shapes:
        assert not bool(strategy.state[n][~strategy.mask[n]].any())
    strategy.round_info = {"clients": [0], "draws": {0: 1}}
    kept = strategy.mask
    strategy.replies = replies[:1]
    strategy.server_update(2, dict(strategy.state), kept)
    assert strategy.mask == kept and strategy.mask_version == 2
    assert strategy.round_info["extra"]["prunefl_reconfigured"] == 0


def test_server_keeps_the_mask_without_valid_squared_gradients(caplog: pytest.LogCaptureFixture) -> None:
    exp = _exp("strategy_options.adjust_every=2", "strategy_options.adjust_until=6")
    strategy = PruneFL(exp, torch.device("cpu"), {})
    assert [t for t in range(1, 11) if strategy.client_instructions(t)[COLLECT]] == [1, 3, 5]
    mask = _random_mask(exp, 0.3, 2)
    strategy.set_mask(mask)
    bad = {n: -torch.ones(strategy.shapes[n]) for n in exp.masked_names}
    strategy.round_info = {"clients": [0], "draws": {0: 1}}
    strategy.replies = [_reply(exp, 0, strategy.state, mask, bad, [0.0] * 4)]
    strategy.server_update(3, dict(strategy.state), mask)
    assert strategy.mask == mask and strategy.mask_version == 1
    assert strategy.round_info["extra"]["prunefl_reconfigured"] == 0
    assert "left out: values must be finite and >= 0" in caplog.text


def test_initial_mask_by_criterion() -> None:
    exp = _exp("strategy_options.initial=criterion")
    strategy = PruneFL(exp, torch.device("cpu"), {})
    strategy.initialize(None)
    assert strategy.mask is not None and strategy.mask_version == 1
    assert strategy.mask.density() == pytest.approx(0.3, abs=1e-3)


def test_initial_pruning_steps_default_to_one_local_round() -> None:
    """ip_steps unset: each adaptive step follows local_epochs passes (40 images, batch 16: 3
    steps per pass), in the run's batch order."""
    exp = _exp("strategy_options.ip_rounds=1", "local_epochs=2")
    model = exp.new_model()
    got = PruneFLClient().train(exp, model, Mask.ones(model, exp.masked_names), 3, 0,
                                {"round": 0, "mask_version": -1, "stage": INITIAL_STAGE}, {})
    assert got.metrics == {"ip_steps": 6.0}
    assert got.mask.num_active() == sum(m.numel() - int(0.3 * m.numel()) for m in got.mask.values())
