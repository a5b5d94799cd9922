"""FedRTS: its pure rules (fedsparse/methods/fedrts.py: the method note's hand-computed example
(section 3), the client votes, Top-K decisions, posterior checkpoints, the schedule, the options and
the votes' wire format), its client step (fedsparse/methods/fedrts_client.py) and its server logic
(fedsparse/fl/strategies/fedrts.py) on a small synthetic 28x28 task with mnist_net (no Ray)."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
import torch

from fedsparse.config import load_config
from fedsparse.errors import ConfigError
from fedsparse.experiment import Experiment
from fedsparse.fl.strategies.base import Reply
from fedsparse.fl.strategies.fedrts import FedRTS
from fedsparse.fl.strategies.registry import strategy_options
from fedsparse.methods.fedrts import (VOTE_KEY, VOTE_SIZES, VOTES, FedRTSOptions, Posterior,
                                      active_counts, active_observations, adjust_fraction, adjusts,
                                      client_votes, decode_votes, encode_votes,
                                      inactive_observations, top_k_mask)
from fedsparse.methods.fedrts_client import FedRTSClient
from fedsparse.plugin_options import build_options
from fedsparse.sparse.mask import Mask
from fedsparse.train.client_update import client_update
from fedsparse.train.local import LocalTrainer
from synthetic import synthetic_experiment

MASK = {"w": torch.tensor([True, True, True, False, False, False])}
# fraction 0.4: k = int(0.4 * 3) = 1 vote per client, kappa = 3 - 1 = 2 core links.
FRACTION = 0.4
# Inactive entries (3..5) hold leftovers that must not count.
GLOBAL = {"w": torch.tensor([0.9, -0.1, 0.5, 7.0, 7.0, 7.0])}
CLIENT_A = {"w": torch.tensor([0.8, 0.6, -0.1, 9.0, 0.0, 9.0])}
CLIENT_B = {"w": torch.tensor([-0.2, 0.3, 0.7, 9.0, 9.0, 0.0])}
# Gradients: huge values on active coordinates must be ignored; the top inactive |g| is at 4.
GRAD_A = {"w": torch.tensor([50.0, 50.0, 50.0, 0.1, -0.9, 0.2])}
GRAD_B = {"w": torch.tensor([50.0, 50.0, 50.0, 0.3, 0.4, -0.35])}


def _example_posterior() -> Posterior:
    """The note's example after one full update (active and inactive), lambda = 10, prior 1."""
    votes = [client_votes(MASK, g, FRACTION) for g in (GRAD_A, GRAD_B)]
    post = Posterior(MASK, prior=1.0)
    x_act = active_observations(MASK, GLOBAL, [CLIENT_A, CLIENT_B], [50, 50], FRACTION, 0.5)
    x_ina = inactive_observations(MASK, votes, [50, 50], 0.5, 0.5)
    post.update(x_act, MASK, lam=10.0)
    post.update(x_ina, {n: ~m for n, m in MASK.items()}, lam=10.0)
    return post


def test_note_example_observations_posterior_and_decision() -> None:
    votes = [client_votes(MASK, g, FRACTION) for g in (GRAD_A, GRAD_B)]
    assert all(torch.equal(v["w"], torch.tensor([4])) for v in votes)
    x_act = active_observations(MASK, GLOBAL, [CLIENT_A, CLIENT_B], [1, 1], FRACTION, 0.5)
    assert torch.equal(x_act["w"], torch.tensor([0.75, 0.5, 0.75, 0.0, 0.0, 0.0]))
    x_ina = inactive_observations(MASK, votes, [1, 1], 0.5, 0.5)
    assert torch.equal(x_ina["w"], torch.tensor([0.0, 0.0, 0.0, 0.25, 0.75, 0.25]))
    post = _example_posterior()
    assert post.a["w"].dtype == torch.float32
    assert torch.equal(post.a["w"], torch.tensor([8.5, 6.0, 8.5, 3.5, 8.5, 3.5]))
    assert torch.equal(post.b["w"], torch.tensor([3.5, 6.0, 3.5, 8.5, 3.5, 8.5]))
    counts = active_counts(MASK)
    assert counts == {"w": 3}
    xi = {"w": torch.tensor([0.62, 0.55, 0.80, 0.30, 0.71, 0.20])}
    assert torch.equal(top_k_mask(xi, counts)["w"],
                       torch.tensor([True, False, True, False, True, False]))
    assert torch.equal(top_k_mask(post.means(), counts)["w"],
                       torch.tensor([True, False, True, False, True, False]))


def test_gamma_weighs_the_aggregated_observation() -> None:
    """Paper convention: gamma = 1 uses only the aggregated (global / 0.5) observation, gamma = 0
    only the clients'."""
    votes = [client_votes(MASK, g, FRACTION) for g in (GRAD_A, GRAD_B)]
    clients = [CLIENT_A, CLIENT_B]
    assert torch.equal(active_observations(MASK, GLOBAL, clients, [1, 1], FRACTION, 1.0)["w"],
                       torch.tensor([1.0, 0.0, 1.0, 0.0, 0.0, 0.0]))
    assert torch.equal(active_observations(MASK, GLOBAL, clients, [1, 1], FRACTION, 0.0)["w"],
                       torch.tensor([0.5, 1.0, 0.5, 0.0, 0.0, 0.0]))
    assert torch.equal(inactive_observations(MASK, votes, [1, 1], 1.0, 0.5)["w"],
                       torch.tensor([0.0, 0.0, 0.0, 0.5, 0.5, 0.5]))
    # Unequal shares: p = (3/4, 1/4); only client B votes for 3.
    votes_b = [{"w": torch.tensor([4])}, {"w": torch.tensor([3, 4])}]
    assert torch.allclose(inactive_observations(MASK, votes_b, [30, 10], 0.0, 0.5)["w"],
                          torch.tensor([0.0, 0.0, 0.0, 0.25, 1.0, 0.0]))


def test_client_votes_tiny_example_ties_and_edges() -> None:
    mask = {"a": torch.tensor([[True, False, False], [False, True, False]]),
            "b": torch.ones(4, dtype=torch.bool), "c": torch.zeros(3, dtype=torch.bool)}
    grads = {"a": torch.tensor([[9.0, -0.5, 0.5], [0.2, 9.0, -0.7]]),
             "b": torch.ones(4), "c": torch.ones(3)}
    # a: K = 2, k = int(1.0 * 2) = 2 of the inactive {1, 2, 3, 5}; |g| 0.5, 0.5, 0.2, 0.7 ->
    # 5 then the tie 1/2 goes to 1; returned ascending. b: no inactive. c: K = 0 -> k = 0.
    votes = client_votes(mask, grads, 1.0)
    assert torch.equal(votes["a"], torch.tensor([1, 5]))
    assert votes["a"].dtype == torch.int64
    assert votes["b"].numel() == 0 and votes["b"].dtype == torch.int64
    assert votes["c"].numel() == 0
    # k capped by the inactive count: K = 4 active of 5, fraction 1 -> k = min(4, 1) = 1.
    capped = client_votes({"d": torch.tensor([True, True, False, True, True])},
                          {"d": torch.zeros(5)}, 1.0)
    assert torch.equal(capped["d"], torch.tensor([2]))
    assert client_votes(mask, grads, 0.0)["a"].numel() == 0
    with pytest.raises(ValueError):
        client_votes(mask, grads, 1.5)


def test_observation_edges_and_bad_votes() -> None:
    full = {"w": torch.ones(4, dtype=torch.bool)}
    w = {"w": torch.tensor([1.0, 2.0, 3.0, 4.0])}
    # No inactive coordinates: inactive X all 0; fraction 1 -> kappa 0 -> active X all 0.
    assert torch.equal(inactive_observations(full, [{"w": torch.tensor([], dtype=torch.int64)}],
                                             [1], 0.5, 0.5)["w"], torch.zeros(4))
    assert torch.equal(active_observations(full, w, [w], [1], 1.0, 0.5)["w"], torch.zeros(4))
    assert torch.equal(active_observations(full, w, [w], [1], 0.0, 0.5)["w"], torch.ones(4))
    with pytest.raises(ValueError, match="inactive"):
        inactive_observations(MASK, [{"w": torch.tensor([1])}], [1], 0.5, 0.5)
    with pytest.raises(ValueError, match="inactive"):
        inactive_observations(MASK, [{"w": torch.tensor([6])}], [1], 0.5, 0.5)
    with pytest.raises(ValueError, match="no votes"):
        inactive_observations(MASK, [{}], [1], 0.5, 0.5)
    with pytest.raises(ValueError, match="share"):
        active_observations(MASK, GLOBAL, [CLIENT_A], [1, 1], FRACTION, 0.5)
    with pytest.raises(ValueError, match="share"):
        active_observations(MASK, GLOBAL, [CLIENT_A], [0], FRACTION, 0.5)


def _random_mask(gen: torch.Generator) -> dict[str, torch.Tensor]:
    return {"conv": torch.rand(8, 3, 3, 3, generator=gen) < 0.3,
            "fc": torch.rand(10, 40, generator=gen) < 0.1}


def test_full_round_keeps_k_per_layer_and_is_deterministic() -> None:
    gen = torch.Generator().manual_seed(3)
    mask = _random_mask(gen)
    shapes = {n: m.shape for n, m in mask.items()}
    glob = {n: torch.randn(s, generator=gen) * mask[n] for n, s in shapes.items()}
    clients = [{n: torch.randn(s, generator=gen) for n, s in shapes.items()} for _ in range(3)]
    grads = [{n: torch.randn(s, generator=gen) for n, s in shapes.items()} for _ in range(3)]
    shares = [10, 20, 5]

    def round_mask(seed: int) -> Mask:
        post = Posterior(mask, prior=1.0)
        votes = [client_votes(mask, g, 0.2) for g in grads]
        post.update(active_observations(mask, glob, clients, shares, 0.2, 0.5), mask, 10.0)
        post.update(inactive_observations(mask, votes, shares, 0.5, 0.5),
                    {n: ~m for n, m in mask.items()}, 10.0)
        return top_k_mask(post.sample(torch.Generator().manual_seed(seed)), active_counts(mask))

    new = round_mask(7)
    assert active_counts(new) == active_counts(mask)
    assert new == round_mask(7)
    assert new != round_mask(8)


def test_sample_determinism_and_generator_use() -> None:
    post = Posterior(_random_mask(torch.Generator().manual_seed(0)), prior=2.0)
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    s1, s2 = post.sample(g1), post.sample(g2)
    assert all(torch.equal(s1[n], s2[n]) for n in s1)
    assert all(s1[n].shape == post.a[n].shape and bool(((s1[n] > 0) & (s1[n] < 1)).all())
               for n in s1)
    again = post.sample(g1)  # the generator advanced: a new draw
    assert not torch.equal(again["fc"], s1["fc"])


def test_huge_lambda_sample_equals_top_k_of_means() -> None:
    mask = {"w": torch.tensor([True, True, True, False, False, False]),
            "v": torch.arange(20) % 3 == 0}
    post = Posterior(mask)
    x = {"w": torch.tensor([0.75, 0.5, 0.75, 0.25, 0.75, 0.25]),
         "v": torch.linspace(0.025, 0.975, 20)[torch.randperm(20, generator=torch.Generator()
                                                              .manual_seed(1))]}
    post.update(x, {n: torch.ones_like(m) for n, m in mask.items()}, lam=1e6)
    counts = active_counts(mask)
    expected = top_k_mask(post.means(), counts)
    assert torch.equal(expected["w"], torch.tensor([True, False, True, False, True, False]))
    for seed in range(5):
        assert top_k_mask(post.sample(torch.Generator().manual_seed(seed)), counts) == expected


def test_update_only_touches_selected_coordinates() -> None:
    post = Posterior(MASK, prior=1.5)
    post.update({"w": torch.full((6,), 0.2)}, {"w": torch.tensor([True] + [False] * 5)}, lam=2.0)
    assert torch.allclose(post.a["w"], torch.tensor([1.9, 1.5, 1.5, 1.5, 1.5, 1.5]))
    assert torch.allclose(post.b["w"], torch.tensor([3.1, 1.5, 1.5, 1.5, 1.5, 1.5]))
    with pytest.raises(ValueError, match="0, 1"):
        post.update({"w": torch.full((6,), 1.5)}, MASK, lam=1.0)


def test_posterior_checkpoint_round_trip() -> None:
    post = _example_posterior()
    state = {k: v.clone() for k, v in post.state_dict().items()}
    assert sorted(state) == ["alpha/w", "beta/w"]
    fresh = Posterior(MASK)
    fresh.load_state_dict(state)
    assert torch.equal(fresh.a["w"], post.a["w"]) and torch.equal(fresh.b["w"], post.b["w"])
    draw = post.sample(torch.Generator().manual_seed(0))["w"]
    assert torch.equal(fresh.sample(torch.Generator().manual_seed(0))["w"], draw)
    with pytest.raises(ValueError, match="shape"):
        fresh.load_state_dict({"alpha/w": torch.ones(5), "beta/w": torch.ones(6)})
    with pytest.raises(ValueError, match="expected"):
        fresh.load_state_dict({"alpha/w": torch.ones(6)})


def test_top_k_mask_ties_and_bounds() -> None:
    m = top_k_mask({"w": torch.tensor([[0.5, 0.9], [0.5, 0.5]])}, {"w": 2})
    assert torch.equal(m["w"], torch.tensor([[True, True], [False, False]]))
    assert int(top_k_mask({"w": torch.rand(5)}, {"w": 0})["w"].sum()) == 0
    with pytest.raises(ValueError):
        top_k_mask({"w": torch.rand(5)}, {"w": 6})


def test_schedule() -> None:
    """0-based t = round - 1: adjustments at t = 10, 20, ..., T_end (code: 300 of 500 rounds)."""
    rounds = [r for r in range(1, 501) if adjusts(r, 10, 300)]
    assert rounds[:2] == [11, 21] and rounds[-1] == 301 and len(rounds) == 30
    assert not adjusts(1, 1, 10)
    assert adjust_fraction(1, 300, 0.4) == pytest.approx(0.4)
    assert adjust_fraction(151, 300, 0.4) == pytest.approx(0.2)
    assert adjust_fraction(301, 300, 0.4) == 0.0
    assert adjust_fraction(1, 0, 0.4) == 0.0


def test_schedule_settings_default_to_the_top_level_keys() -> None:
    """Null options read readjust_every / readjust_until (rounds // 2 when null) / alpha."""
    cfg = load_config("feddst_mnist", ["strategy=fedrts", "rounds=500", "readjust_every=10",
                                       "alpha=0.2"])
    assert strategy_options(cfg).schedule(cfg) == (10, 250, 0.2)
    cfg = load_config("feddst_mnist", ["strategy=fedrts", "rounds=500", "readjust_until=300",
                                       "strategy_options.adjust_every=5",
                                       "strategy_options.alpha=0.4"])
    assert strategy_options(cfg).schedule(cfg) == (5, 300, 0.4)
    cfg = load_config("feddst_mnist", ["strategy=fedrts", "strategy_options.adjust_until=7"])
    assert strategy_options(cfg).schedule(cfg)[1] == 7


def test_options_defaults_and_validation() -> None:
    opts = build_options(FedRTSOptions, {}, "strategy_options", "strategy 'fedrts'")
    assert (opts.lam, opts.gamma, opts.alpha, opts.adjust_every, opts.adjust_until, opts.prior,
            opts.vote_gradient, opts.observe_every_round, opts.inactive_observation) == (
        10.0, 0.5, None, None, None, 1.0, "batch", True, 0.5)
    assert build_options(FedRTSOptions, {"gamma": 0, "lam": 1}, "strategy_options",
                         "strategy 'fedrts'").gamma == 0.0
    for bad in ({"gamma": 1.5}, {"lam": 0}, {"alpha": 0}, {"adjust_every": 0},
                {"adjust_until": -1}, {"adjust_until": 0.5}, {"vote_gradient": "entire"}, {"prior": -1},
                {"inactive_observation": 2}, {"observe_every_round": 1}, {"delta_T": 5}):
        with pytest.raises(ConfigError):
            build_options(FedRTSOptions, bad, "strategy_options", "strategy 'fedrts'")


# ------------------------------------------------------------------ wire format of the votes
def test_votes_wire_round_trip_and_rejections() -> None:
    mask = {"a": torch.tensor([True, False, False, False]), "b": torch.tensor([[True, False], [True, False]])}
    votes = {"a": torch.tensor([1]), "b": torch.tensor([1, 3])}
    up = encode_votes(votes, ["a", "b"])
    assert up[VOTES].dtype == np.int32 and up[VOTE_SIZES].dtype == np.int64
    assert up[VOTES].tolist() == [1, 1, 3] and up[VOTE_SIZES].tolist() == [1, 2]
    # fraction 1: a may carry min(1, 3) = 1 vote, b min(2, 2) = 2.
    back = decode_votes(up[VOTES], up[VOTE_SIZES], mask, ["a", "b"], 1.0)
    assert all(torch.equal(back[n], votes[n]) for n in votes)
    bad = {"missing": (None, up[VOTE_SIZES]),
           "1-D integer": (up[VOTES].astype(np.float32), up[VOTE_SIZES]),
           "summing": (up[VOTES], np.asarray([1, 1])),
           "counts": (up[VOTES], np.asarray([1, 2, 0])),
           "at most": (np.asarray([1, 2, 1, 3]), np.asarray([2, 2])),
           "distinct": (np.asarray([1, 3, 3]), np.asarray([1, 2])),
           "flat indices": (np.asarray([4, 1, 3]), np.asarray([1, 2])),
           "inactive": (np.asarray([0, 1, 3]), np.asarray([1, 2]))}
    for match, (v, n) in bad.items():
        with pytest.raises(ValueError, match=match if match != "missing" else "no 'votes'"):
            decode_votes(v, n, mask, ["a", "b"], 1.0)
    # fraction 0.5: int(0.5 * 1) = 0 votes allowed for a.
    with pytest.raises(ValueError, match="at most 0"):
        decode_votes(up[VOTES], up[VOTE_SIZES], mask, ["a", "b"], 0.5)


# ------------------------------------------------------------------ client step and server logic
def _exp(*overrides: str) -> Experiment:
    """4 iid clients of 40 synthetic 28x28 images (no real data), mnist_net, sparsity 0.7;
    adjustments at t = 3, 6 (rounds 4, 7), alpha 0.3."""
    return synthetic_experiment(["strategy=fedrts", "clients_per_round=2",
                                "rounds=10", "readjust_every=3",
                                "readjust_until=8", "alpha=0.3", "batch_size=16",
                                "local_epochs=1", "augment=false", "sparsity=0.7",
                                *overrides])


def _strategy(exp: Experiment) -> FedRTS:
    strategy = FedRTS(exp, torch.device("cpu"), {})
    strategy.initialize(None)  # criterion random: no grid needed
    return strategy


def test_client_step_trains_like_client_update_and_votes() -> None:
    exp = _exp("strategy_options.vote_gradient=epoch")
    strategy = _strategy(exp)
    mask = strategy.mask
    start = exp.new_model()
    mask.apply(start)
    model, plain = copy.deepcopy(start), copy.deepcopy(start)
    fraction = 0.25
    got = FedRTSClient().train(exp, model, mask, 1, 4,
                               {"round": 4, VOTE_KEY: True, "drop_fraction": fraction}, {})
    ref = client_update(exp, plain, mask, 1, 4)
    assert got.train_loss == ref.train_loss and got.mask is mask and got.mask_changes == 0
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), plain.state_dict().values()))
    # the votes: top-k |dense gradient over one pass| at the trained weights, among the inactive
    x, y = exp.client_train(1)
    trainer = LocalTrainer(copy.deepcopy(model), mask, lr=0.0, momentum=0.0, weight_decay=0.0,
                           batch_size=exp.cfg.train.batch_size)
    grads = trainer.gradients(x, y, list(exp.masked_names), "epoch", torch.Generator())
    want = client_votes(mask, grads, fraction)
    back = decode_votes(got.upload[VOTES], got.upload[VOTE_SIZES], mask, exp.masked_names, fraction)
    assert all(torch.equal(back[n], want[n]) for n in exp.masked_names)
    for n in exp.masked_names:
        assert len(back[n]) == min(int(fraction * int(mask[n].sum())), int((~mask[n]).sum()))
    assert got.metrics == {"vote_grad_samples": 40.0, "votes": float(len(got.upload[VOTES]))}
    assert got.metrics["votes"] > 0
    quiet = FedRTSClient().train(exp, copy.deepcopy(start), mask, 1, 5, {"round": 5, VOTE_KEY: False}, {})
    assert quiet.upload == {} and quiet.metrics == {"vote_grad_samples": 0.0, "votes": 0.0}
    none = FedRTSClient().train(exp, copy.deepcopy(start), mask, 1, 9,
                                {"round": 9, VOTE_KEY: True, "drop_fraction": 0.0}, {})
    assert none.upload[VOTES].size == 0 and none.upload[VOTE_SIZES].tolist() == [0] * 4
    assert none.metrics == {"vote_grad_samples": 0.0, "votes": 0.0}  # k = 0: no gradient pass
    batch = FedRTSClient().train(_exp(), copy.deepcopy(start), mask, 1, 4,
                                 {"round": 4, VOTE_KEY: True, "drop_fraction": fraction}, {})
    assert batch.metrics["vote_grad_samples"] == 16.0


def _replies(strategy: FedRTS, seed: int, fraction: float, bad_votes: bool = False) -> list[Reply]:
    """Three clients (sample counts 40, 20, 40) with random weights on the global mask and random
    gradients' votes; the third's votes are malformed when `bad_votes`."""
    gen = torch.Generator().manual_seed(seed)
    mask = strategy.mask
    out = []
    for pid, n in enumerate((40.0, 20.0, 40.0)):
        state = {k: torch.randn(t.shape, generator=gen) * (mask[k] if k in mask else 1)
                 for k, t in strategy.state.items()}
        grads = {k: torch.randn(mask[k].shape, generator=gen) for k in strategy.masked}
        extras = encode_votes(client_votes(mask, grads, fraction), strategy.masked)
        if bad_votes and pid == 2:
            extras[VOTES] = extras[VOTES][:-1]
        out.append(Reply(pid, state, mask, n, n, {}, extras))
    return out


def _run_round(strategy: FedRTS, server_round: int, replies: list[Reply]) -> None:
    strategy.round_info = {"clients": [r.pid for r in replies], "draws": {r.pid: 1 for r in replies}}
    strategy.replies = replies
    average, union = strategy.average([r.state for r in replies], [r.mask for r in replies],
                                      [r.weight for r in replies])
    strategy.server_update(server_round, average, union)


def test_server_observes_every_round_and_adjusts_on_schedule(caplog: pytest.LogCaptureFixture) -> None:
    exp = _exp()
    strategy = _strategy(exp)
    assert strategy.posterior is not None and strategy.mask_version == 1
    assert [r for r in range(1, 11) if strategy.client_instructions(r)[VOTE_KEY]] == [4, 7]
    assert strategy.client_instructions(4)["drop_fraction"] == pytest.approx(0.15 * (1 + np.cos(np.pi * 3 / 8)))
    assert strategy.client_instructions(5)["drop_fraction"] == 0.0
    # round 3: active observations only (kappa from f(2)), the mask kept
    mask = strategy.mask
    replies = _replies(strategy, 0, adjust_fraction(4, 8, 0.3))
    want = Posterior(mask)
    average, _ = strategy.average([r.state for r in replies], [r.mask for r in replies], [40, 20, 40])
    want.update(active_observations(mask, average, [r.state for r in replies], [40, 20, 40],
                                    adjust_fraction(3, 8, 0.3), 0.5), mask, 10.0)
    _run_round(strategy, 3, replies)
    assert strategy.mask == mask and strategy.mask_version == 1
    assert strategy.round_info["extra"]["fedrts_changed"] == 0
    assert all(torch.equal(strategy.posterior.a[n], want.a[n]) for n in strategy.masked)
    assert all(torch.equal(strategy.posterior.b[n], want.b[n]) for n in strategy.masked)
    # round 4 adjusts: active then inactive observations (client 2's malformed votes left out),
    # one Beta draw from the (seed, round) generator, Top-K with K per layer unchanged
    f4 = adjust_fraction(4, 8, 0.3)
    replies = _replies(strategy, 1, f4, bad_votes=True)
    average, _ = strategy.average([r.state for r in replies], [r.mask for r in replies], [40, 20, 40])
    want.update(active_observations(mask, average, [r.state for r in replies], [40, 20, 40], f4, 0.5),
                mask, 10.0)
    votes = [decode_votes(r.extras[VOTES], r.extras[VOTE_SIZES], mask, strategy.masked, f4)
             for r in replies[:2]]
    want.update(inactive_observations(mask, votes, [40, 20], 0.5, 0.5),
                {n: ~m for n, m in mask.items()}, 10.0)
    expected = top_k_mask(want.sample(strategy.generator(4)), active_counts(mask))
    _run_round(strategy, 4, replies)
    assert "votes of client 2 are left out" in caplog.text
    assert strategy.mask == expected and strategy.mask_version == 2
    assert active_counts(strategy.mask) == active_counts(mask)
    changed = strategy.mask.changed(mask)
    assert changed > 0 and strategy.round_info["extra"]["fedrts_changed"] == changed
    for n in strategy.masked:
        assert not bool(strategy.state[n][~strategy.mask[n]].any())
        assert not bool(strategy.state[n][strategy.mask[n] & ~mask[n]].any())  # grown at 0
        assert torch.equal(strategy.state[n][strategy.mask[n] & mask[n]],
                           average[n][strategy.mask[n] & mask[n]])


def test_server_keeps_the_mask_without_valid_votes(caplog: pytest.LogCaptureFixture) -> None:
    strategy = _strategy(_exp())
    mask = strategy.mask
    replies = [dataclasses.replace(r, extras={}) for r in _replies(strategy, 0, 0.1)]
    _run_round(strategy, 4, replies)
    assert strategy.mask == mask and strategy.mask_version == 1
    assert strategy.round_info["extra"]["fedrts_changed"] == 0
    assert "no valid votes" in caplog.text


def test_observe_only_on_adjustment_rounds() -> None:
    strategy = _strategy(_exp("strategy_options.observe_every_round=false", "strategy_options.prior=2"))
    _run_round(strategy, 3, _replies(strategy, 0, 0.1))
    assert all(bool((strategy.posterior.a[n] == 2.0).all()) for n in strategy.masked)
    _run_round(strategy, 4, _replies(strategy, 0, adjust_fraction(4, 8, 0.3)))
    assert any(bool((strategy.posterior.a[n] != 2.0).any()) for n in strategy.masked)


def test_checkpoint_resumes_exactly() -> None:
    exp = _exp()
    first = _strategy(exp)
    _run_round(first, 3, _replies(first, 0, 0.1))
    saved = first.state_dict()
    assert sorted(k for k in saved["tensors"] if k.startswith("posterior/")) == sorted(
        f"posterior/{p}/{n}" for p in ("alpha", "beta") for n in exp.masked_names)
    second = FedRTS(exp, torch.device("cpu"), {})
    second.load_state_dict({**saved, "tensors": {k: t.clone() for k, t in saved["tensors"].items()}})
    f4 = adjust_fraction(4, 8, 0.3)
    _run_round(first, 4, _replies(first, 1, f4))
    _run_round(second, 4, _replies(second, 1, f4))
    assert first.mask == second.mask and first.mask_version == second.mask_version == 2
    assert all(torch.equal(first.posterior.a[n], second.posterior.a[n]) for n in exp.masked_names)
