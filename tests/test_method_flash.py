"""FLASH: the pure rules (the method note's hand-computed examples: stage-1 counts, the JMWST
consensus mask in both roundings, one client redistribution step; their invariants, the
prune-rate schedule, the options), the client step (when it redistributes, with which rate, on
the same batches as plain training) and the server (the round-0 search, the consensus round,
the averages, the reply budget), on synthetic data without Flower's grid."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

import fedsparse.fl.strategies.flash as strategy_module
import fedsparse.methods.flash as flash_module
from fedsparse.config import load_config
from fedsparse.errors import ConfigError
from fedsparse.experiment import Experiment
from fedsparse.fl.sampling import sample_clients
from fedsparse.fl.strategies.base import Reply
from fedsparse.fl.strategies.flash import Flash
from fedsparse.methods import flash_client
from fedsparse.methods.flash import (DST, SEARCH_STAGE, FlashOptions, consensus_mask,
                                     dense_average, dst_points, prune_rate_at, redistribute,
                                     search_densities)
from fedsparse.methods.flash_client import FlashClient
from fedsparse.plugin_options import build_options
from fedsparse.sparse.mask import Mask
from fedsparse.train.client_update import client_update
from synthetic import synthetic_experiment


def _mask(numel: int, on: list[int]) -> torch.Tensor:
    m = torch.zeros(numel, dtype=torch.bool)
    m[on] = True
    return m


def _on(m: torch.Tensor) -> list[int]:
    return m.reshape(-1).nonzero().squeeze(1).tolist()


# --- example 3(a): the consensus mask -------------------------------------------------------

AVERAGE = {"A": torch.tensor([0.5, -0.1, 0.0, 0.3]),
           "B": torch.tensor([0.2, 0.0, 0.0, -0.9, 0.0, 0.05, 0.0, 0.4])}
CLIENTS = [Mask({"A": _mask(4, [0, 1]), "B": _mask(8, [3, 7])}),
           Mask({"A": _mask(4, [0, 3]), "B": _mask(8, [3, 5, 7])})]


@pytest.mark.parametrize(("rounding", "a", "b"), [("floor", [0], [3]), ("exact", [0], [3, 7])])
def test_consensus_mask_example(rounding: str, a: list[int], b: list[int]) -> None:
    """L = (2, 2.5), ratio 0.25 * 12 / 4.5: int() keeps 1 + 1, exact keeps 1 + 2 (total 3)."""
    mask = consensus_mask(AVERAGE, CLIENTS, 0.25, "avg", rounding)
    assert (_on(mask["A"]), _on(mask["B"])) == (a, b)


def test_consensus_mask_aggregate_counts_nonzeros_of_the_average() -> None:
    """aggregate: L = nonzeros of the average (3, 4); ratio 3 / 7 -> 1.29, 1.71 -> 1 + 2."""
    mask = consensus_mask(AVERAGE, CLIENTS, 0.25, "aggregate", "exact")
    assert (_on(mask["A"]), _on(mask["B"])) == ([0], [3, 7])
    floor = consensus_mask(AVERAGE, CLIENTS, 0.25, "aggregate", "floor")
    assert (_on(floor["A"]), _on(floor["B"])) == ([0], [3])


def test_consensus_mask_never_exceeds_the_clients_counts() -> None:
    """ratio is capped at 1: at density 1 the layers keep the clients' mean counts (2 + 2.5 ->
    round(4.5) = 4 in total), the largest |w| of the average."""
    mask = consensus_mask(AVERAGE, CLIENTS, 1.0, "avg", "exact")
    assert mask.num_active() == 4
    assert _on(mask["A"]) == [0, 3]


# --- example 3(b): stage-1 layer counts --------------------------------------------------

def _client(numels: dict[str, int], active: dict[str, int]) -> Mask:
    return Mask({n: _mask(numels[n], list(range(active[n]))) for n in numels})


NUMELS = {"A": 100, "B": 300}
SEARCHED = [_client(NUMELS, {"A": 20, "B": 30}), _client(NUMELS, {"A": 10, "B": 30})]


def test_search_densities_example() -> None:
    """rho = (0.15, 0.10), c = 40 / 45: A 13.33, B 26.67 -> exact 13 + 27 = 40, floor 13 + 26."""
    assert search_densities(NUMELS, SEARCHED, 0.1, "exact") == {"A": 13, "B": 27}
    assert search_densities(NUMELS, SEARCHED, 0.1, "floor") == {"A": 13, "B": 26}


def test_search_densities_caps_full_layers_and_keeps_the_total() -> None:
    """A layer driven past density 1 keeps all its weights; exact moves the rest to the others
    (floor, as the code, loses it); a layer no client kept gets 0."""
    numels = {"A": 10, "B": 100, "C": 50}
    clients = [_client(numels, {"A": 10, "B": 10, "C": 0})]
    exact = search_densities(numels, clients, 0.5, "exact")
    assert exact == {"A": 10, "B": 70, "C": 0} and sum(exact.values()) == 80
    assert search_densities(numels, clients, 0.5, "floor") == {"A": 10, "B": 40, "C": 0}


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="density"):
        search_densities(NUMELS, SEARCHED, 0.0, "exact")
    with pytest.raises(ValueError, match="rounding"):
        consensus_mask(AVERAGE, CLIENTS, 0.25, "avg", "ceil")
    with pytest.raises(ValueError, match="layer_counts"):
        consensus_mask(AVERAGE, CLIENTS, 0.25, "union", "exact")
    with pytest.raises(ValueError, match="client mask"):
        search_densities(NUMELS, [], 0.1, "exact")


# --- example 3(c): one client redistribution -----------------------------------------------

def _example_c() -> tuple[Mask, dict[str, torch.Tensor]]:
    """A: 10 of 40 active, mean |w| 0.3 (smallest 0.1, 0.2 at 0, 1); B: 20 of 80 active, mean
    |w| 0.1 (smallest 0.01, 0.02, 0.03, 0.04 at 0..3)."""
    a = torch.zeros(40)
    a[:10] = torch.tensor([0.1, 0.2, 0.3, 0.3, 0.3, 0.3, -0.3, 0.3, 0.4, 0.5])
    b = torch.zeros(80)
    b[:20] = torch.tensor([0.01, 0.02, -0.03, 0.04] + [0.11] * 15 + [0.25])
    mask = Mask({"A": _mask(40, list(range(10))), "B": _mask(80, list(range(20)))})
    return mask, {"A": a.reshape(4, 10), "B": b}


def _reshaped(mask: Mask) -> Mask:
    return Mask({"A": mask["A"].reshape(4, 10), "B": mask["B"]})


def test_redistribute_example_counts_and_adjustment() -> None:
    """v = (0.75, 0.25), p = 0.2: drop 2 + 4, regrow ceil(4.5) = 5 and ceil(1.5) = 2 -> A 13,
    B 18; shortfall 30 - 31 = -1, adj = 0.75 * -1 + mean([-1]) = -1.75."""
    mask, weights = _example_c()
    history: list[float] = []
    new, adj = redistribute(_reshaped(mask), weights, 0.2, {"A": 10, "B": 20}, 0.0,
                            torch.Generator().manual_seed(0), history)
    assert (int(new["A"].sum()), int(new["B"].sum())) == (13, 18)
    assert new["A"].shape == (4, 10)
    assert history == [-1.0] and adj == pytest.approx(-1.75)
    survivors_a, survivors_b = set(range(2, 10)), set(range(4, 20))
    assert survivors_a <= set(_on(new["A"])) and survivors_b <= set(_on(new["B"]))
    # every other active position was inactive after pruning (just-dropped ones may return)
    assert len(set(_on(new["A"])) - survivors_a) == 5 and len(set(_on(new["B"])) - survivors_b) == 2


def test_redistribute_is_deterministic_given_the_generator() -> None:
    mask, weights = _example_c()
    runs = [redistribute(_reshaped(mask), weights, 0.2, {"A": 10, "B": 20}, 0.0,
                         torch.Generator().manual_seed(seed), [])[0] for seed in (3, 3, 4)]
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_redistribute_spreads_the_overflow_of_a_full_layer() -> None:
    """A: 7 of 10 active with all the magnitude; B: 2 of 100 active at |w| 0, so v = (1, 0).
    p = 0.5 drops ceil(3.5) = 4 from A and 1 from B. adj = 0: A regrows 5 (cap 0.99 * 7 = 6.93).
    adj = 10: A wants 15, takes 6.93 -> 6; the overflow 8.07 goes to B -> 8."""
    mask = Mask({"A": _mask(10, list(range(7))), "B": _mask(100, [0, 1])})
    weights = {"A": torch.ones(10), "B": torch.zeros(100)}
    new, _ = redistribute(mask, weights, 0.5, {"A": 5, "B": 5}, 0.0,
                          torch.Generator().manual_seed(0), [])
    assert (int(new["A"].sum()), int(new["B"].sum())) == (3 + 5, 1)
    new, _ = redistribute(mask, weights, 0.5, {"A": 5, "B": 5}, 10.0,
                          torch.Generator().manual_seed(0), [])
    assert (int(new["A"].sum()), int(new["B"].sum())) == (3 + 6, 1 + 8)
    assert {4, 5, 6} <= set(_on(new["A"]))  # ties in |w|: the lower indices are dropped


def test_redistribute_dense_dominant_layer_prunes_at_most_its_zero_fraction() -> None:
    """A layer denser than 0.8 holding more than its share of mean |w| prunes at most its zero
    fraction (core.py 104-110): A 19 of 20 active, rate 0.5 -> 0.05 * 19 -> ceil = 1."""
    mask = Mask({"A": _mask(20, list(range(19))), "B": _mask(100, list(range(10)))})
    weights = {"A": torch.ones(20), "B": torch.full((100,), 0.1)}
    history: list[float] = []
    new, _ = redistribute(mask, weights, 0.5, {"A": 19, "B": 10}, 0.0,
                          torch.Generator().manual_seed(0), history)
    # removed 1 + 5 = 6; v = (1/1.1, 0.1/1.1): A wants ceil(5.45) = 6 capped at 0.99 * 2,
    # B ceil(0.55) = 1 plus A's overflow 4.02 -> 5
    assert (int(new["A"].sum()), int(new["B"].sum())) == (18 + 1, 5 + 5)


def test_redistribute_handles_empty_and_full_layers() -> None:
    """An empty layer (no active weight: mean |w| 0, nothing to drop) and a full layer with a
    rate that drops nothing from it (no inactive position to grow into) are left as they are."""
    mask = Mask({"empty": _mask(5, []), "full": _mask(4, [0, 1, 2, 3]),
                 "c": _mask(10, [0, 1, 2])})
    weights = {"empty": torch.zeros(5), "full": torch.ones(4),
               "c": torch.tensor([0.5, 0.1, 0.9] + [0.0] * 7)}
    new, _ = redistribute(mask, weights, 1e-12, {"empty": 0, "full": 4, "c": 3}, 0.0,
                          torch.Generator().manual_seed(0), [])
    assert _on(new["empty"]) == [] and _on(new["full"]) == [0, 1, 2, 3]
    assert int(new["c"].sum()) == 3 and {0, 2} <= set(_on(new["c"]))


# --- schedule, options, imports ----------------------------------------------------------

def test_prune_rate_decays_linearly_to_zero() -> None:
    assert prune_rate_at(0, 20, 0.25) == 0.25
    assert prune_rate_at(10, 20, 0.25) == pytest.approx(0.125)
    assert prune_rate_at(20, 20, 0.25) == pytest.approx(0.0)
    assert prune_rate_at(25, 20, 0.25) == 0.0
    with pytest.raises(ValueError, match="total_steps"):
        prune_rate_at(0, 0, 0.25)


def test_options_defaults_and_ranges() -> None:
    opts = build_options(FlashOptions, {}, "strategy_options", "strategy 'flash'")
    assert (opts.variant, opts.search_fraction, opts.search_epochs, opts.prune_rate,
            opts.update_every, opts.layer_counts, opts.average, opts.rounding) == (
        "spdst", 0.1, 10, 0.25, 1, "avg", "masked", "exact")
    assert build_options(FlashOptions, {"variant": "jmwst", "search_fraction": 1},
                         "strategy_options", "strategy 'flash'").search_fraction == 1.0
    for bad in ({"variant": "nst"}, {"search_fraction": 0}, {"search_epochs": 0},
                {"prune_rate": 1.0}, {"update_every": 0}, {"layer_counts": "sum"},
                {"average": "fma"}, {"rounding": "ceil"}):
        with pytest.raises(ConfigError, match=f"strategy_options.{next(iter(bad))}="):
            build_options(FlashOptions, bad, "strategy_options", "strategy 'flash'")


def test_module_imports_no_flower() -> None:
    tree = ast.parse(Path(flash_module.__file__).read_text())
    imported = [a.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                for a in node.names]
    imported += [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    assert not [m for m in imported if m.split(".")[0] in ("flwr", "ray")]
    assert all(not m.startswith("fedsparse.fl") for m in imported)


def test_dst_points() -> None:
    """After every epoch but the last; with one epoch after batch n // 2 (0-based)."""
    assert dst_points(3, 1) == [2] and dst_points(2, 1) == [2] and dst_points(1, 1) == [1]
    assert dst_points(5, 1) == [3] and dst_points(3, 4) == [3, 6, 9]
    with pytest.raises(ValueError, match="batches and epochs"):
        dst_points(0, 2)


def test_dense_average_includes_the_zeros_of_non_holders() -> None:
    """Weights 1 and 3: holders-only would give w[1] = 2.0; the dense mean gives 3 * 2 / 4."""
    states = [{"w": torch.tensor([1.0, 0.0, 0.0]), "b": torch.tensor([1.0])},
              {"w": torch.tensor([3.0, 2.0, 0.0]), "b": torch.tensor([5.0])}]
    masks = [Mask({"w": torch.tensor([True, False, False])}),
             Mask({"w": torch.tensor([True, True, False])})]
    average, union = dense_average(states, masks, [1.0, 3.0])
    assert average["w"].tolist() == [2.5, 1.5, 0.0] and average["b"].tolist() == [4.0]
    assert union["w"].tolist() == [True, True, False]


# --- the client step and the server, on synthetic data ------------------------------------

def _exp(*overrides: str) -> Experiment:
    """4 iid clients of 10 synthetic 28x28 images (3 batches of 4, 4, 2), mnist_net, density 0.3."""
    return synthetic_experiment(["strategy=flash", "clients_per_round=2",
                                "rounds=10", "batch_size=4", "local_epochs=1",
                                "augment=false", "sparsity=0.7", *overrides],
                                images=40, test_images=10)


def _random_mask(exp: Experiment, density: float, seed: int) -> Mask:
    gen = torch.Generator().manual_seed(seed)
    params = dict(exp.new_model().named_parameters())
    return Mask({n: torch.rand(params[n].shape, generator=gen) < density for n in exp.masked_names})


def _masked_model(exp: Experiment, mask: Mask) -> torch.nn.Module:
    model = exp.new_model()
    mask.apply(model)
    return model


def _states_equal(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


@pytest.mark.parametrize(("epochs", "steps"), [(1, [2]), (2, [3])])
def test_client_redistributes_at_its_points_on_the_batches_of_plain_training(
        epochs: int, steps: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    """With a redistribution that keeps the mask, the chunked training (cut at the DST points,
    augmentation on) is exactly client_update's; redistribute is called at steps `steps` of
    3 * epochs with rate 0.25 * (1 - step / total)."""
    exp = _exp(f"local_epochs={epochs}", "augment=true")
    mask = _random_mask(exp, 0.3, 1)
    calls = []

    def keep(m: Mask, weights: dict, rate: float, baseline: dict, adj: float, gen: torch.Generator,
             history: list) -> tuple[Mask, float]:
        calls.append(rate)
        return m, adj

    monkeypatch.setattr(flash_client, "redistribute", keep)
    model, plain = _masked_model(exp, mask), _masked_model(exp, mask)
    got = FlashClient().train(exp, model, mask, 2, 3, {"round": 3, DST: True}, {})
    ref = client_update(exp, plain, mask, 2, 3)
    assert _states_equal(model, plain)
    assert got.train_loss == pytest.approx(ref.train_loss, rel=1e-6)
    assert calls == pytest.approx([0.25 * (1 - s / (3 * epochs)) for s in steps])
    assert got.mask_changes == 0 and got.metrics == {"flash_redistributions": float(len(steps))}


def test_client_dst_moves_weights_between_layers_near_the_target_count() -> None:
    """One local epoch: one redistribution after 2 of 3 steps; the mask changes, its total stays
    within the server's reply budget, pruned weights are zero; seeded (the same twice); without
    `flash_dst` the step is plain masked training."""
    exp = _exp()
    mask = _random_mask(exp, 0.3, 1)
    model = _masked_model(exp, mask)
    got = FlashClient().train(exp, model, mask, 1, 2, {"round": 2, DST: True}, {})
    again = FlashClient().train(exp, _masked_model(exp, mask), mask, 1, 2, {"round": 2, DST: True}, {})
    assert got.mask == again.mask and got.train_loss == again.train_loss
    assert got.mask_changes == got.mask.changed(mask) > 0
    assert got.metrics == {"flash_redistributions": 1.0}
    target = round(0.3 * mask.numel())
    assert abs(got.mask.num_active() - target) <= 0.05 * target + len(mask)
    params = dict(model.named_parameters())
    assert all(not bool(params[n][~got.mask[n]].any()) for n in got.mask)
    plain = FlashClient().train(exp, _masked_model(exp, mask), mask, 1, 2, {"round": 2}, {})
    assert plain.mask is mask and plain.mask_changes == 0 and plain.metrics == {}


def _fake_exchange(calls: list) -> object:
    """`exchange` run in-process: each client's FlashClient step on the strategy's weights
    restricted to the stage mask."""
    def run(strategy: Flash, grid: object, pids: list[int], instructions: dict, mask: Mask,
            server_round: int = 0) -> list[Reply]:
        replies: list[Reply] = []
        calls.append((list(pids), dict(instructions), mask, replies))
        for pid in pids:
            model = strategy.exp.new_model()
            model.load_state_dict({n: t * mask[n] if n in mask else t
                                   for n, t in strategy.state.items()}, strict=False)
            result = FlashClient().train(strategy.exp, model, mask, pid, server_round,
                                         {"round": server_round, "mask_version": -1, **instructions}, {})
            replies.append(Reply(pid, {}, result.mask, 40.0, 40.0, dict(result.metrics), {}))
        return replies
    return run


def test_server_search_at_round_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    """m = int(0.5 * 4) = 2 seeded clients search 1 epoch (one redistribution, mid-epoch) from a
    uniform random mask at 0.3; the global mask has the counts `search_densities` gives for their
    masks, at random positions; the initial weights are kept (zeroed outside the mask)."""
    calls: list = []
    monkeypatch.setattr(strategy_module, "exchange", _fake_exchange(calls))
    exp = _exp("strategy_options.search_fraction=0.5", "strategy_options.search_epochs=1")
    strategy = Flash(exp, torch.device("cpu"), {})
    initial = {n: t.clone() for n, t in strategy.state.items()}
    strategy.initialize(None)
    (pids, instructions, start, replies), = calls
    assert pids == sample_clients(exp.cfg.seed, 0, range(4), 2) and instructions == {"stage": SEARCH_STAGE}
    numels = {n: start[n].numel() for n in start}
    assert all(int(start[n].sum()) == round(0.3 * numels[n]) for n in start)
    searched = [r.mask for r in replies]
    assert all(r.metrics == {"flash_redistributions": 1.0} and r.mask != start for r in replies)
    counts = search_densities(numels, searched, 0.3, "exact")
    assert {n: int(strategy.mask[n].sum()) for n in numels} == counts
    assert strategy.mask != start and strategy.mask_version == 1
    assert strategy.mask.num_active() == round(0.3 * sum(numels.values()))
    for n, t in strategy.state.items():
        want = initial[n] * strategy.mask[n] if n in numels else initial[n]
        assert torch.equal(t, want), n
    extra = strategy.round_info["extra"]
    assert extra["flash_search_clients"] == 2
    assert extra["flash_search_density"] == pytest.approx(sum(m.density() for m in searched) / 2)


def _round(strategy: Flash, t: int, replies: list[Reply], draws: dict[int, int]) -> None:
    strategy.round_info = {"clients": sorted(draws), "draws": draws}
    strategy.replies = replies
    average, union = strategy.average([r.state for r in replies], [r.mask for r in replies],
                                      [r.weight for r in replies])
    strategy.server_update(t, average, union)


def test_server_jmwst_consensus_round() -> None:
    """Masked average of two clients' states; the new mask is `consensus_mask` on it with client 1
    (drawn twice) counted twice; state zero outside it; every other round with update_every 2."""
    exp = _exp("strategy_options.variant=jmwst", "strategy_options.update_every=2")
    strategy = Flash(exp, torch.device("cpu"), {})
    assert [t for t in range(1, 8) if strategy.client_instructions(t)[DST]] == [1, 3, 5, 7]
    mask = _random_mask(exp, 0.3, 2)
    strategy.set_mask(mask)
    masks = [_random_mask(exp, 0.2, 3), _random_mask(exp, 0.4, 4)]
    gen = torch.Generator().manual_seed(5)
    states = [{n: torch.randn(t.shape, generator=gen) * (m[n] if n in m else 1)
               for n, t in strategy.state.items()} for m in masks]
    replies = [Reply(0, states[0], masks[0], 40.0, 40.0, {}, {}),
               Reply(1, states[1], masks[1], 40.0, 80.0, {}, {})]
    _round(strategy, 3, replies, {0: 1, 1: 2})
    average, _ = strategy.average(states, masks, [40.0, 80.0])
    want = consensus_mask({n: average[n] for n in exp.masked_names},
                          [masks[0], masks[1], masks[1]], 0.3, "avg", "exact")
    assert strategy.mask == want and strategy.mask_version == 2
    assert strategy.mask.num_active() == round(0.3 * mask.numel())
    for n, t in strategy.state.items():
        assert torch.equal(t, average[n] * want[n] if n in want else average[n]), n
    extra = strategy.round_info["extra"]
    assert extra["flash_mask_updated"] == 1
    assert extra["flash_client_density"] == pytest.approx((masks[0].density() + 2 * masks[1].density()) / 3)
    assert extra["flash_union_density"] == pytest.approx(masks[0].union(masks[1]).density())
    _round(strategy, 4, replies, {0: 1, 1: 2})  # not a mask round: the mask stays
    assert strategy.mask == want and strategy.mask_version == 2
    assert strategy.round_info["extra"]["flash_mask_updated"] == 0


def test_server_averages_budget_and_spdst() -> None:
    """average=dense is the plain weighted mean; the jmwst reply budget allows the client DST's
    drift; spdst keeps its mask and the base budget."""
    exp = _exp("strategy_options.variant=jmwst", "strategy_options.average=dense")
    strategy = Flash(exp, torch.device("cpu"), {})
    mask = _random_mask(exp, 0.3, 2)
    strategy.set_mask(mask)
    target = round(0.3 * mask.numel())
    assert strategy.reply_budget() == int(max(mask.num_active(), target) * 1.05) + 4
    masks = [_random_mask(exp, 0.3, 3), _random_mask(exp, 0.3, 4)]
    states = [{n: torch.ones(t.shape) * (m[n] if n in m else 1) for n, t in strategy.state.items()}
              for m in masks]
    average, union = strategy.average(states, masks, [1.0, 1.0])
    n = exp.masked_names[0]
    both, one = masks[0][n] & masks[1][n], masks[0][n] ^ masks[1][n]
    assert bool((average[n][both] == 1).all()) and bool((average[n][one] == 0.5).all())
    assert union == masks[0].union(masks[1])
    spdst = Flash(_exp(), torch.device("cpu"), {})
    spdst.set_mask(mask)
    assert spdst.reply_budget() is None and not spdst.client_instructions(1)[DST]
    replies = [Reply(0, states[0], mask, 40.0, 40.0, {}, {})]
    _round(spdst, 1, replies, {0: 1})
    assert spdst.mask == mask and spdst.mask_version == 1
    assert "flash_mask_updated" not in spdst.round_info.get("extra", {})


def test_bad_option_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"^strategy_options.ip_rounds is invalid"):
        load_config("feddst_mnist", ["strategy=flash", "strategy_options.ip_rounds=3"])
