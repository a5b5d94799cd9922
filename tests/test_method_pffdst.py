"""PFFDST (fedsparse.methods.pffdst, pffdst_client, fl/strategies/pffdst): the method note's
hand-computed examples (differential readjust, freeze and grow), the round schedule, the layer
counts and invariants; the frozen bits on the wire; the server strategy on hand-made replies
(schedule, freeze, stage-2 average, checkpoint); the client step (frozen weights bit-exact, T-only
upload)."""

import copy

import numpy as np
import pytest
import torch

from fedsparse.config import load_config
from fedsparse.errors import ConfigError
from fedsparse.experiment import Experiment
from fedsparse.fl.payload import decode_state, encode_state, float_state
from fedsparse.fl.strategies.base import Reply
from fedsparse.fl.strategies.pffdst import PFFDST
from fedsparse.methods.pffdst import (FROZEN_BITS, PFFDSTOptions, differential_readjust,
                                      freeze_and_grow, freeze_counts, frozen_bits,
                                      frozen_from_bits, is_differential_round, is_freeze_round,
                                      reset_readjusted, restore_frozen, stage_counts)
from fedsparse.methods.pffdst_client import PFFDSTClient
from fedsparse.plugin_options import build_options
from fedsparse.sparse.mask import Mask
from fedsparse.train.client_update import client_update
from synthetic import synthetic_experiment

torch.set_num_threads(1)


def bits(*idx: int, n: int = 8) -> torch.Tensor:
    out = torch.zeros(n, dtype=torch.bool)
    out[list(idx)] = True
    return out


def on(m: torch.Tensor) -> list[int]:
    return m.nonzero().flatten().tolist()


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


MASK_A = Mask({"w": bits(0, 3, 5)})


def weights_a() -> dict[str, torch.Tensor]:
    return {"w": torch.tensor([0.9, 0.0, 0.0, -0.2, 0.0, 0.4, 0.0, 0.0])}


# ------------------------------------------------------------------------------ options
def test_options_defaults_and_validation() -> None:
    opts = build_options(PFFDSTOptions, {}, "strategy_options", "strategy 'pffdst'")
    assert (opts.freeze_at, opts.differential, opts.differential_until, opts.differential_every,
            opts.differential_counts, opts.freeze_grow, opts.stage2_extra) == \
        (0.5, 0.5, 0.25, 10, "budget", "random", False)
    assert opts.check() is None
    ok = build_options(PFFDSTOptions, {"differential_until": 0.5, "differential_counts": "numel"},
                       "strategy_options", "strategy 'pffdst'")
    assert ok.differential_until == ok.freeze_at == 0.5
    for bad in ({"differential_until": 0.6}, {"freeze_at": 1.0}, {"differential": 1.5},
                {"differential_every": 0}, {"freeze_grow": "gradient"},
                {"differential_counts": "erk"}, {"differential_until": 0.0}):
        with pytest.raises(ConfigError):
            build_options(PFFDSTOptions, bad, "strategy_options", "strategy 'pffdst'")
    assert "differential_until (0.6) must be <= freeze_at (0.5)" == \
        PFFDSTOptions(differential_until=0.6).check()


# ------------------------------------------------------------------------------ note 3(a)
def test_note_example_a_readjust_round() -> None:
    w = weights_a()
    out = differential_readjust(MASK_A, w, {"w": 1}, gen(0), grow=True)
    assert on(out.pruned["w"]) == [0, 5]  # |w| 0.2 at index 3 is the smallest active
    assert int(out.mask["w"].sum()) == 3 and on(out.grown["w"])[0] in {1, 2, 3, 4, 6, 7}
    # seed 0: U[0,1) scores [.496 .768 .089 .132 .307 .634 .490 .896]: top inactive = 7
    assert on(out.grown["w"]) == [7] and on(out.mask["w"]) == [0, 5, 7]
    reset_readjusted(w, out)
    assert w["w"].tolist() == pytest.approx([0.9, 0, 0, 0, 0, 0.4, 0, 0])
    # a just-dropped weight may come back (the code's grown_mask, start=True): at weight 0
    w = weights_a()
    back = differential_readjust(MASK_A, w, {"w": 1}, gen(25), grow=True)
    assert on(back.grown["w"]) == [3] and back.mask == MASK_A
    reset_readjusted(w, back)
    assert w["w"][3].item() == 0.0 and w["w"][0].item() == pytest.approx(0.9)


def test_note_example_a_final_drop() -> None:
    out = differential_readjust(MASK_A, weights_a(), {"w": 1}, gen(0), grow=False)
    assert on(out.mask["w"]) == [0, 5] and not out.grown["w"].any()


# ------------------------------------------------------------------------------ note 3(b)
def test_note_example_b_freeze_grow_and_frozen_values() -> None:
    mask = Mask({"w": bits(0, 5)})
    frozen, grown = freeze_and_grow(mask, {"w": 2}, gen(0))
    assert frozen == mask and on(grown["w"]) == [1, 7]  # seed 0: top scores outside {0, 5}
    assert int(grown["w"].sum()) == 2 and not (grown["w"] & frozen["w"]).any()
    glob = frozen.union(grown)
    assert glob.density() == 4 / 8
    values = {"w": torch.tensor([0.9, 0.0, 0.0, 0.0, 0.0, 0.4, 0.0, 0.0])}
    # two clients: masked SGD steps on the global mask, frozen values restored after each step
    states = []
    for c in range(2):
        w = values["w"].clone().requires_grad_(True)
        momentum = torch.zeros(8)  # SGD with momentum and weight decay, by hand (no optimizer
        target = torch.arange(8.0) * (c + 1)  # import: torch.optim's first step loads dynamo)
        for _ in range(3):
            w.grad = None
            ((w * glob["w"] - target) ** 2).sum().backward()
            with torch.no_grad():
                momentum.mul_(0.9).add_(w.grad + 1e-3 * w)
                w.sub_(0.1 * momentum).mul_(glob["w"])
            restore_frozen({"w": w}, frozen, values)
        assert torch.equal(w.detach()[frozen["w"]], values["w"][frozen["w"]])  # bit for bit
        assert w.detach()[grown["w"]].ne(0).all()
        states.append(w.detach()[grown["w"]])  # the upload: |T| = 2 values
    assert all(s.numel() == 2 for s in states)
    server = {"w": torch.zeros(8)}
    server["w"][grown["w"]] = (states[0] + states[1]) / 2  # average on T
    restore_frozen(server, frozen, values)
    assert server["w"][[0, 5]].tolist() == values["w"][[0, 5]].tolist()
    assert server["w"][grown["w"]].tolist() == ((states[0] + states[1]) / 2).tolist()
    assert on(server["w"] != 0) == [0, 1, 5, 7]


# ------------------------------------------------------------------------------ invariants
def test_frozen_positions_never_dropped_nor_grown() -> None:
    frozen = Mask({"w": bits(0, 3)})
    mask = Mask({"w": bits(0, 3, 5, 6)})  # F | T
    w = {"w": torch.tensor([0.01, 0, 0, -0.02, 0, 0.5, 0.3, 0])}  # frozen ones are the smallest
    for seed in range(20):
        out = differential_readjust(mask, w, {"w": 1}, gen(seed), grow=True, frozen=frozen)
        assert on(out.pruned["w"]) == [0, 3, 5]  # 0.3 dropped, not the frozen 0.01 / -0.02
        assert int(out.mask["w"].sum()) == 4 and (out.mask["w"] & frozen["w"]).equal(frozen["w"])
        assert on(out.grown["w"])[0] in {1, 2, 4, 6, 7}


def test_counts_determinism_and_global_rng() -> None:
    g0 = gen(1)
    mask = Mask({"a": torch.rand(6, 5, generator=g0) < 0.4,
                 "b": torch.rand(20, generator=g0) < 0.3})
    w = {n: torch.randn(m.shape, generator=g0) * m for n, m in mask.items()}
    counts = {"a": 3, "b": 2}
    state = torch.random.get_rng_state()
    one = differential_readjust(mask, w, counts, gen(5), grow=True)
    assert torch.equal(state, torch.random.get_rng_state())  # the caller's generator only
    assert one.mask == differential_readjust(mask, w, counts, gen(5), grow=True).mask
    for n, m in mask.items():
        assert int(one.mask[n].sum()) == int(m.sum())
        assert int((m & ~one.pruned[n]).sum()) == counts[n] == int(one.grown[n].sum())
        assert not (one.grown[n] & one.pruned[n]).any()
    frozen, grown = freeze_and_grow(one.mask, counts, gen(5))
    assert freeze_and_grow(one.mask, counts, gen(5))[1] == grown
    assert {n: int(t.sum()) for n, t in grown.items()} == counts


def test_edge_cases_full_and_absent_layers() -> None:
    full = Mask({"w": torch.ones(4, dtype=torch.bool)})
    w = {"w": torch.tensor([0.4, 0.1, 0.3, 0.2])}
    out = differential_readjust(full, w, {"w": 2}, gen(0), grow=True)
    assert on(out.pruned["w"]) == [0, 2] and on(out.grown["w"]) == [1, 3] and out.mask == full
    # only one movable weight: one dropped, one regrown (the same); a layer with no count is kept
    frozen = Mask({"w": bits(0, 1, 2, n=4), "v": bits(n=3)})
    mask = Mask({"w": torch.ones(4, dtype=torch.bool), "v": bits(1, n=3)})
    out = differential_readjust(mask, {**w, "v": torch.ones(3)}, {"w": 2}, gen(0), grow=True,
                                frozen=frozen)
    assert out.mask == mask and on(out.grown["w"]) == [3] and not out.grown["v"].any()
    # freeze when fewer than `counts` positions are outside F: all of them
    frozen, grown = freeze_and_grow(Mask({"w": bits(0, 1, 2, n=4)}), {"w": 3}, gen(0))
    assert on(grown["w"]) == [3]


# ------------------------------------------------------------------------------ counts
def test_stage_counts_two_layers() -> None:
    budget, numels = {"a": 40, "b": 4}, {"a": 100, "b": 100}
    d1, f = stage_counts(budget, numels, 0.5, "budget")
    assert d1 == {"a": 20, "b": 2} and f == {"a": 10, "b": 1}
    # "numel": d1 density = 44 / 200 / 2 = 0.11, f = int(0.5 * 0.11 * 100) = 5 in both layers
    # (b's f exceeds its d1 count: the code empties such a layer at a drop)
    d1n, fn = stage_counts(budget, numels, 0.5, "numel")
    assert d1n == d1 and fn == {"a": 5, "b": 5}
    assert stage_counts({"a": 1}, {"a": 9}, 0.5, "budget") == ({"a": 1}, {"a": 0})  # min 1
    assert freeze_counts(d1, f, False) == d1
    assert freeze_counts(d1, f, True) == {"a": 30, "b": 3}


# ------------------------------------------------------------------------------ schedule
def schedule(rounds: int, opts: PFFDSTOptions) -> dict[int, str]:
    return {t: a for t in range(1, rounds + 1) if (a := is_differential_round(t, rounds, opts))}


def test_schedule_400_rounds() -> None:
    opts = PFFDSTOptions()
    expected = {t: "readjust" for t in range(10, 100, 10)} | {100: "drop"}
    assert schedule(400, opts) == expected
    assert [t for t in range(1, 401) if is_freeze_round(t, 400, opts)] == [200]
    every7 = schedule(400, PFFDSTOptions(differential_every=7))
    assert every7 == {t: "readjust" for t in range(7, 100, 7)} | {100: "drop"}
    assert schedule(400, PFFDSTOptions(differential=0.0)) == {}


def test_schedule_40_rounds_and_small() -> None:
    opts = PFFDSTOptions()
    assert schedule(40, opts) == {10: "drop"}  # R // 4 = 10: the code prunes without regrowing
    assert [t for t in range(1, 41) if is_freeze_round(t, 40, opts)] == [20]
    both = PFFDSTOptions(differential_until=0.5)
    assert schedule(40, both) == {10: "readjust", 20: "drop"} and is_freeze_round(20, 40, both)
    assert schedule(3, opts) == {} and is_freeze_round(1, 3, opts)  # R // 4 = 0, R // 2 = 1
    assert not any(is_freeze_round(t, 1, opts) for t in (0, 1))
    assert is_freeze_round(29, 100, PFFDSTOptions(freeze_at=0.29, differential_until=0.2))


# ------------------------------------------------------------------------------ wire
def test_frozen_bits_round_trip_and_checks() -> None:
    mask = Mask({"a": bits(0, 3, 5), "b": torch.tensor([[True, True], [False, True]])})
    frozen = Mask({"a": bits(3), "b": torch.tensor([[True, False], [False, True]])})
    packed = frozen_bits(mask, frozen, ["a", "b"])
    # active in order: a0 a3 a5 | b00 b01 b11 -> 0 1 0 1 0 1, padded to 8 bits
    assert packed.dtype == np.uint8 and packed.tolist() == [0b01010100]
    assert frozen_from_bits(mask, packed, ["a", "b"]) == frozen
    with pytest.raises(ValueError, match="expected uint8 of shape"):
        frozen_from_bits(mask, np.zeros(2, np.uint8), ["a", "b"])
    with pytest.raises(ValueError, match="padding"):
        frozen_from_bits(mask, np.array([0b01010101], np.uint8), ["a", "b"])


# ------------------------------------------------------------------------------ strategy
def _exp(*overrides: str) -> Experiment:
    """4 iid clients of 40 synthetic 28x28 images (no real data), mnist_net, sparsity 0.7."""
    return synthetic_experiment(["strategy=pffdst", "clients_per_round=2",
                                "rounds=8", "batch_size=16", "local_epochs=1",
                                "augment=false", "sparsity=0.7", "criterion=magnitude",
                                *overrides])


SCHEDULE = ("strategy_options.differential_every=1", "strategy_options.differential_until=0.25")


def _counts(mask: Mask) -> dict[str, int]:
    return {n: int(m.sum()) for n, m in mask.items()}


def _replies(strategy: PFFDST, seed: int) -> list[Reply]:
    """Two clients' replies on the reply mask: random values there (and in the dense tensors)."""
    gen = torch.Generator().manual_seed(seed)
    held = strategy.reply_mask()
    out = []
    for pid in (0, 1):
        state = {n: torch.randn(t.shape, generator=gen) * (held[n] if n in held else 1)
                 for n, t in strategy.state.items()}
        out.append(Reply(pid, state, held, 40.0, 40.0 * (pid + 1), {}, {}))
    return out


def _round(strategy: PFFDST, t: int, seed: int) -> list[Reply]:
    strategy.round_info = {"clients": [0, 1], "draws": {0: 1, 1: 1}}
    strategy.replies = _replies(strategy, seed)
    average, union = strategy.average([r.state for r in strategy.replies],
                                      [r.mask for r in strategy.replies],
                                      [r.weight for r in strategy.replies])
    strategy.server_update(t, average, union)
    return strategy.replies


def test_initial_mask_is_the_top_magnitudes_at_d1_plus_f() -> None:
    exp = _exp()
    strategy = PFFDST(exp, torch.device("cpu"), {})
    strategy.initialize(None)
    params = dict(exp.new_model().named_parameters())
    for n in exp.masked_names:
        k = strategy.d1[n] + strategy.f[n]
        assert strategy.d1[n] == strategy.budget[n] // 2 and strategy.f[n] == strategy.d1[n] // 2
        assert int(strategy.mask[n].sum()) == k
        kept = params[n].detach().abs()[strategy.mask[n]]
        assert kept.min() >= params[n].detach().abs()[~strategy.mask[n]].max()
    assert strategy.mask_version == 1
    with pytest.raises(ConfigError, match=r"^strategy='pffdst' is invalid with scope=global: "):
        load_config("feddst_mnist", ["strategy=pffdst", "scope=global"])  # before any work


def test_server_rounds_readjust_drop_freeze_and_stage2() -> None:
    """rounds 8, every 1, until 0.25 -> R_end 2; freeze_at 0.5 -> 4. Round 1 readjusts (counts
    kept), round 2 drops f (d1 left), round 3 nothing, round 4 freezes (F = the round-3 mask, d1
    grown outside it at weight 0), round 5 averages T only and keeps F's values."""
    exp = _exp(*SCHEDULE)
    s = PFFDST(exp, torch.device("cpu"), {})
    s.initialize(None)
    d1, f = s.d1, s.f
    start = s.mask
    _round(s, 1, 1)
    assert s.round_info["extra"]["pffdst_event"] == 1 and s.mask_version == 2
    assert _counts(s.mask) == {n: d1[n] + f[n] for n in d1} and s.mask != start
    grown = {n: s.mask[n] & ~start[n] for n in d1}
    assert all(not s.state[n][grown[n]].any() for n in d1)  # regrown weights start at 0
    assert all(not s.state[n][~s.mask[n]].any() for n in d1)
    before = s.mask
    _round(s, 2, 2)
    assert s.round_info["extra"]["pffdst_event"] == 2 and _counts(s.mask) == d1
    assert all(bool((s.mask[n] & ~before[n]).sum() == 0) for n in d1)  # drop only
    _round(s, 3, 3)
    assert s.round_info["extra"]["pffdst_event"] == 0 and s.mask_version == 3
    stage1, values = s.mask, {n: t.clone() for n, t in s.state.items()}
    _round(s, 4, 4)
    extra = s.round_info["extra"]
    assert extra["pffdst_event"] == 3 and s.frozen == stage1 and s.mask_version == 4
    state4 = {n: t.clone() for n, t in s.state.items()}
    trainable = s.reply_mask()
    assert _counts(trainable) == d1 and s.mask == stage1.union(trainable)
    assert all(not (trainable[n] & stage1[n]).any() for n in d1)
    assert all(not s.state[n][trainable[n]].any() for n in d1)  # T starts at 0
    n_f = stage1.num_active()
    assert extra["frozen_active"] == n_f and extra["trainable_active"] == trainable.num_active()
    assert extra["density"] == pytest.approx(2 * n_f / s.mask.numel())
    # F's values are round 4's average at F (round 4 is still stage 1)
    assert all(torch.equal(s.frozen_values[n][stage1[n]], s.state[n][stage1[n]]) for n in d1)
    assert not all(torch.equal(values[n], s.state[n]) for n in d1)
    extras = s.download_extras(5, 0)
    assert list(extras) == [FROZEN_BITS]
    assert extras[FROZEN_BITS].size == -(-s.mask.num_active() // 8)
    assert frozen_from_bits(s.mask, extras[FROZEN_BITS], exp.masked_names) == stage1
    replies = _round(s, 5, 5)
    assert s.round_info["extra"]["pffdst_event"] == 0 and s.mask_version == 4
    for n in d1:
        assert torch.equal(s.state[n][stage1[n]], state4[n][stage1[n]])  # F exact
        want = (replies[0].state[n] * 40 + replies[1].state[n] * 80) / 120
        torch.testing.assert_close(s.state[n][trainable[n]], want[trainable[n]])
        assert not s.state[n][~s.mask[n]].any()
    for n in ("conv1.bias", "fc2.bias"):  # dense tensors: plain weighted means
        torch.testing.assert_close(s.state[n], (replies[0].state[n] + 2 * replies[1].state[n]) / 3)


def test_three_rounds_drop_f_at_the_freeze() -> None:
    """The golden's schedule: 3 rounds, R_end = 0 (no drop round), freeze after round 1: f is
    dropped by |w| at the freeze, so F and T hold d1 each (final density d)."""
    s = PFFDST(_exp("rounds=3"), torch.device("cpu"), {})
    s.initialize(None)
    start = s.mask
    replies = _round(s, 1, 1)
    average, _ = s.average([r.state for r in replies], [r.mask for r in replies],
                           [r.weight for r in replies])
    extra = s.round_info["extra"]
    assert extra["pffdst_event"] == 5 and _counts(s.frozen) == s.d1
    assert _counts(s.reply_mask()) == s.d1
    for n, f in s.frozen.items():
        assert not (f & ~start[n]).any()
        dropped = start[n] & ~f
        assert int(dropped.sum()) == s.f[n] and not s.frozen_values[n][dropped].any()
        assert average[n][f].abs().min() >= average[n][dropped].abs().max()  # f smallest |w|
    assert extra["frozen_active"] == extra["trainable_active"] == sum(s.d1.values())
    _round(s, 2, 2)
    assert s.round_info["extra"]["pffdst_event"] == 0

def test_checkpoint_resumes_the_frozen_stage_exactly() -> None:
    exp = _exp(*SCHEDULE)
    s = PFFDST(exp, torch.device("cpu"), {})
    s.initialize(None)
    for t in range(1, 5):
        _round(s, t, t)
    saved = copy.deepcopy(s.state_dict())
    assert {k.split("/")[0] for k in saved["tensors"]} == {"state", "mask", "frozen_mask", "frozen"}
    resumed = PFFDST(exp, torch.device("cpu"), {})
    resumed.load_state_dict(saved)
    assert resumed.frozen == s.frozen and resumed.mask == s.mask and resumed.reply_mask() == s.reply_mask()
    assert np.array_equal(resumed.download_extras(5, 1)[FROZEN_BITS], s.download_extras(5, 1)[FROZEN_BITS])
    _round(s, 5, 9)
    _round(resumed, 5, 9)
    assert all(torch.equal(s.state[n], resumed.state[n]) for n in s.state)
    before = PFFDST(exp, torch.device("cpu"), {})
    before.initialize(None)
    before.load_state_dict(PFFDST.state_dict(before))  # stage 1: nothing frozen
    assert before.frozen is None and before.download_extras(1, 0) == {}
    bad = copy.deepcopy(saved)
    del bad["tensors"]["frozen/fc1.weight"]
    with pytest.raises(ValueError, match="frozen sub-network"):
        PFFDST(exp, torch.device("cpu"), {}).load_state_dict(bad)


# ------------------------------------------------------------------------------ client step
def test_client_stage2_keeps_frozen_weights_exact_and_uploads_t_only() -> None:
    exp = _exp("weight_decay=0.01", "local_epochs=2")
    s = PFFDST(exp, torch.device("cpu"), {})
    s.initialize(None)
    gen = torch.Generator().manual_seed(4)
    frozen, grown = freeze_and_grow(s.mask, s.d1, gen)
    s.frozen, s.frozen_values = frozen, {n: s.state[n].clone() for n in exp.masked_names}
    s.set_mask(frozen.union(grown))
    model = exp.new_model()
    model.load_state_dict(s.state, strict=False)
    start = {n: t.detach().clone() for n, t in model.named_parameters()}
    extras = s.download_extras(1, 0)
    got = PFFDSTClient().train(exp, model, s.mask, 0, 1, {"round": 1}, extras)
    assert got.mask == s.reply_mask() and got.mask_changes == 0 and got.num_examples == 40
    assert got.metrics == {"frozen_copy_bytes": 4.0 * frozen.num_active()}
    params = dict(model.named_parameters())
    for n in exp.masked_names:
        assert torch.equal(params[n].detach()[frozen[n]], start[n][frozen[n]])  # bit for bit
        assert params[n].detach()[grown[n]].ne(0).any()  # T trained
        assert not params[n].detach()[~s.mask[n]].any()
    # the reply: |T| values + the dense tensors, no positions; the server decodes it with T
    record = encode_state(float_state(model), exp.masked_names, got.mask, send_positions=False,
                          codec="auto", value_dtype="float32")
    n_dense = sum(t.numel() for n, t in s.state.items() if n not in exp.masked_names)
    assert record["values"].numpy().size == got.mask.num_active() + n_dense
    assert "positions" not in record
    state, mask, sent = decode_state(record, s.shapes, exp.masked_names, s.reply_mask(),
                                     value_dtype="float32", max_active=s.reply_mask().num_active())
    assert not sent and mask == s.reply_mask()
    assert all(torch.equal(state[n][grown[n]], params[n].detach()[grown[n]]) for n in exp.masked_names)
    with pytest.raises(ValueError, match="frozen_bits"):
        PFFDSTClient().train(exp, exp.new_model(), s.mask, 0, 1, {"round": 1},
                             {FROZEN_BITS: extras[FROZEN_BITS][:-1]})


def test_client_stage1_is_masked_training() -> None:
    exp = _exp()
    s = PFFDST(exp, torch.device("cpu"), {})
    s.initialize(None)
    model, plain = exp.new_model(), exp.new_model()
    for m in (model, plain):
        s.mask.apply(m)
    got = PFFDSTClient().train(exp, model, s.mask, 2, 3, {"round": 3}, {})
    ref = client_update(exp, plain, s.mask, 2, 3)
    assert got.mask is s.mask and got.mask_changes == 0 and got.train_loss == ref.train_loss
    assert got.metrics == {"frozen_copy_bytes": 0.0}
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), plain.state_dict().values()))


def test_bad_strategy_options_are_one_line_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"^strategy_options.nope is invalid: strategy 'pffdst' "
                                          r"has no option 'nope'"):
        load_config("feddst_mnist", ["strategy=pffdst", "strategy_options.nope=1"])
    with pytest.raises(ConfigError, match=r"strategy_options.freeze_at=1.5 is invalid"):
        load_config("feddst_mnist", ["strategy=pffdst", "strategy_options.freeze_at=1.5"])
