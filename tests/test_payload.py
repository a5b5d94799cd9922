"""Model state <-> ArrayRecord: only active values travel, positions only when asked, bad payloads rejected."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from flwr.app import Array, ArrayRecord

from fedsparse.errors import ConfigError
from fedsparse.fl.payload import PayloadError, decode_state, encode_state
from fedsparse.sparse.mask import Mask


def _state(seed: int = 0) -> tuple[dict[str, torch.Tensor], Mask]:
    g = torch.Generator().manual_seed(seed)
    state = {"a.weight": torch.randn(8, 5, generator=g), "a.bias": torch.randn(8, generator=g),
             "b.weight": torch.randn(3, 8, generator=g)}
    mask = Mask({n: torch.rand(state[n].shape, generator=g) < 0.3 for n in ("a.weight", "b.weight")})
    for n, m in mask.items():
        state[n] = state[n] * m
    return state, mask


SHAPES = {"a.weight": torch.Size([8, 5]), "a.bias": torch.Size([8]), "b.weight": torch.Size([3, 8])}
MASKED = ["a.weight", "b.weight"]


@pytest.mark.parametrize("codec", ["auto", "bitmap", "index", "golomb"])
def test_round_trip_with_positions(codec: str) -> None:
    state, mask = _state()
    rec = encode_state(state, MASKED, mask, send_positions=True, codec=codec, value_dtype="float32")
    assert rec["values"].numpy().size == mask.num_active() + 8
    out, got, sent = decode_state(rec, SHAPES, MASKED, None, value_dtype="float32")
    assert sent and got == mask
    assert all(torch.equal(out[n], state[n]) for n in state)


def test_without_positions_uses_known_mask_and_is_smaller() -> None:
    state, mask = _state()
    full = encode_state(state, MASKED, mask, send_positions=True, codec="bitmap", value_dtype="float32")
    lean = encode_state(state, MASKED, mask, send_positions=False, codec="bitmap", value_dtype="float32")
    assert set(lean) == {"values"} and lean.count_bytes() < full.count_bytes()
    out, got, sent = decode_state(lean, SHAPES, MASKED, mask, value_dtype="float32")
    assert not sent and got is mask and all(torch.equal(out[n], state[n]) for n in state)
    with pytest.raises(PayloadError, match="holds no mask"):
        decode_state(lean, SHAPES, MASKED, None, value_dtype="float32")


def test_dense_payload_and_half_precision() -> None:
    state, _ = _state()
    rec = encode_state(state, [], None, send_positions=False, codec="auto", value_dtype="float16")
    out, mask, _ = decode_state(rec, SHAPES, [], None, value_dtype="float16")
    assert mask is None
    assert all(torch.allclose(out[n], state[n], atol=1e-2) for n in state)


@pytest.mark.parametrize("corrupt", ["nan", "short", "extra_key", "over_budget"])
def test_malformed_payloads_are_rejected(corrupt: str) -> None:
    state, mask = _state()
    rec = encode_state(state, MASKED, mask, send_positions=True, codec="bitmap", value_dtype="float32")
    values = rec["values"].numpy().copy()
    max_active = None
    if corrupt == "nan":
        values[0] = np.nan
        rec["values"] = Array(values)
    elif corrupt == "short":
        rec["values"] = Array(values[:-1])
    elif corrupt == "extra_key":
        rec["junk"] = Array(values)
    else:
        max_active = mask.num_active() - 1
    with pytest.raises(PayloadError):
        decode_state(ArrayRecord(dict(rec)), SHAPES, MASKED, None, value_dtype="float32",
                     max_active=max_active)


@pytest.mark.parametrize("shape", [(7,), (20, 30), (6, 3, 5, 5)])
@pytest.mark.parametrize("codec", ["auto", "bitmap", "index", "golomb"])
def test_values_are_the_active_entries_in_c_order(shape: tuple[int, ...], codec: str) -> None:
    """Values outside the mask are dropped; the rest travel bit-exact, masked tensors first."""
    g = torch.Generator().manual_seed(4)
    state = {"w": torch.randn(shape, generator=g), "bias": torch.randn(3, generator=g)}
    mask = Mask({"w": torch.rand(shape, generator=g) < 0.3})
    rec = encode_state(state, ["w"], mask, send_positions=True, codec=codec, value_dtype="float32")
    expected = torch.cat([state["w"][mask["w"]], state["bias"]]).numpy()
    assert set(rec) == {"values", "positions", "position_sizes"}
    np.testing.assert_array_equal(rec["values"].numpy().view(np.uint32), expected.view(np.uint32))
    shapes = {n: t.shape for n, t in state.items()}
    out, got, _ = decode_state(rec, shapes, ["w"], None, value_dtype="float32")
    assert got == mask and out["w"].dtype == torch.float32
    assert torch.equal(out["w"], torch.where(mask["w"], state["w"], 0.0))
    assert torch.equal(out["bias"], state["bias"])


@pytest.mark.parametrize("value_dtype", ["float16", "bfloat16"])
def test_reduced_precision_with_positions(value_dtype: str) -> None:
    state, mask = _state(6)
    rec = encode_state(state, MASKED, mask, send_positions=True, codec="auto", value_dtype=value_dtype)
    assert rec["values"].numpy().itemsize == 2
    out, got, _ = decode_state(rec, SHAPES, MASKED, None, value_dtype=value_dtype)
    assert got == mask
    assert all(torch.allclose(out[n], state[n], rtol=2**-8, atol=1e-6) for n in state)


def test_dense_state_travels_whole_and_exact() -> None:
    state, _ = _state(7)
    rec = encode_state(state, [], None, send_positions=True, codec="auto", value_dtype="float32")
    assert set(rec) == {"values"} and rec["values"].numpy().size == sum(t.numel() for t in state.values())
    out, mask, sent = decode_state(rec, SHAPES, [], None, value_dtype="float32")
    assert mask is None and not sent and all(torch.equal(out[n], state[n]) for n in state)


def test_bad_settings_and_masks_are_rejected() -> None:
    state, mask = _state()
    args = {"send_positions": True, "codec": "auto", "value_dtype": "float32"}
    with pytest.raises(ConfigError, match="auto, bitmap, golomb, index"):
        encode_state(state, MASKED, mask, **{**args, "codec": "zip"})
    with pytest.raises(ConfigError, match="float32, float16, bfloat16"):
        encode_state(state, MASKED, mask, **{**args, "value_dtype": "fp8"})
    wrong = Mask({**mask, "a.weight": torch.ones(8, 6, dtype=torch.bool)})
    with pytest.raises(ValueError, match="shape"):
        encode_state(state, MASKED, wrong, **args)
    lean = encode_state(state, MASKED, mask, **{**args, "send_positions": False})
    full = Mask({n: torch.ones_like(m) for n, m in mask.items()})
    with pytest.raises(PayloadError, match="values received"):
        decode_state(lean, SHAPES, MASKED, full, value_dtype="float32")
