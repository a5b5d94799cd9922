"""The method platform's shared pieces (issue 17): a method's own arrays on the wire, its options
under `strategy_options`, and run identities that strategies without options keep."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fedsparse.config import load_config
from fedsparse.errors import ConfigError
from fedsparse.fl.payload import PayloadError, decode_extras, decode_state, encode_state
from fedsparse.sparse.mask import Mask


def test_extra_arrays_travel_beside_the_state() -> None:
    state = {"w": torch.tensor([[1.0, 0.0], [0.0, 2.0]]), "b": torch.tensor([0.5])}
    mask = Mask({"w": torch.tensor([[True, False], [False, True]])})
    extras = {"votes": np.array([3, 1], dtype=np.int32), "sq_grad": np.ones(4, dtype=np.float32)}
    record = encode_state(state, ["w"], mask, send_positions=True, codec="bitmap",
                          value_dtype="float32", extras=extras)
    got, got_mask, sent = decode_state(record, {n: t.shape for n, t in state.items()}, ["w"], None,
                                       value_dtype="float32")
    assert sent and got_mask == mask and torch.equal(got["w"], state["w"])
    back = decode_extras(record)
    assert sorted(back) == ["sq_grad", "votes"]
    assert back["votes"].dtype == np.int32 and back["votes"].tolist() == [3, 1]
    assert back["sq_grad"].tolist() == [1.0] * 4
    assert decode_extras(encode_state(state, ["w"], mask, send_positions=False, codec="bitmap",
                                      value_dtype="float32")) == {}


def test_unknown_arrays_without_the_extra_prefix_are_still_rejected() -> None:
    from flwr.app import Array

    state = {"b": torch.tensor([0.5])}
    record = encode_state(state, [], None, send_positions=False, codec="bitmap", value_dtype="float32")
    record["votes"] = Array(np.zeros(2, dtype=np.int32))
    with pytest.raises(PayloadError, match="unexpected payload keys"):
        decode_state(record, {"b": torch.Size([1])}, [], None, value_dtype="float32")


def test_strategy_options_are_checked_against_the_selected_strategy() -> None:
    with pytest.raises(ConfigError, match=r"^strategy_options.nope is invalid: strategy 'feddst' "
                                          r"has no option 'nope'; it takes no options$"):
        load_config("feddst_mnist", ["strategy_options.nope=1"])


def test_hashes_of_strategies_without_options_did_not_change() -> None:
    """Run identities recorded before `strategy_options` existed (docs/results archived runs,
    resumable comparisons) still match: a strategy without options adds nothing to the hash."""
    assert load_config("feddst_cifar10", []).hash()[:16] == "0a23ec802f03f546"
    assert load_config("feddst_cifar10", ["faithful=true"]).hash()[:16] == "3682fd31ceaddfbf"
    assert load_config("cifar_noniid", ["strategy=fedavgm"]).hash()[:16] == "976cef9411592a85"


def test_another_methods_option_is_named_as_such() -> None:
    with pytest.raises(ConfigError, match=r"^strategy_options.lam is invalid: 'lam' is an option of "
                                          r"strategy fedrts, not of strategy 'flash' \(variant="):
        load_config("feddst_mnist", ["strategy=flash", "strategy_options.lam=2"])


def test_strategy_options_enter_the_hash_only_for_strategies_that_have_them() -> None:
    plain = load_config("feddst_mnist", ["strategy=fedrts"])
    assert plain.hash() != load_config("feddst_mnist", ["strategy=fedrts", "strategy_options.lam=2"]).hash()
    assert plain.hash() == load_config("feddst_mnist", ["strategy=fedrts", "strategy_options.lam=10.0"]).hash()
