"""Position codecs and their wire tags, value dtypes and the reference bit counts (the model-level
encoding that uses them: tests/test_payload.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fedsparse.comm import (
    POSITION_CODECS,
    codec_names,
    decode_positions,
    decode_values,
    encode_positions,
    encode_values,
    entropy_bits,
    position_codec,
    reference_download_bits,
    reference_upload_bits,
)
from fedsparse.comm.bitmap import BitmapCodec
from fedsparse.comm.golomb import HEADER_BYTES as GOLOMB_HEADER
from fedsparse.comm.registry import PositionCodecs
from fedsparse.errors import ConfigError

CODECS = ["bitmap", "index", "golomb", "auto"]
CIFAR10NET_MASKED = 450 + 2400 + 768000 + 10080 + 840
CIFAR10NET_DENSE = 6 + 16 + 120 + 84 + 10


def random_mask(n: int, density: float, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random(n) < density


def edge_masks() -> list[np.ndarray]:
    one_at = lambda n, i: np.eye(1, n, i, dtype=bool)[0]  # noqa: E731
    alternating = np.arange(1001) % 2 == 0
    return [
        np.zeros(0, bool), np.zeros(1, bool), np.ones(1, bool),
        np.zeros(1000, bool), np.ones(1000, bool),
        one_at(1000, 0), one_at(1000, 999), one_at(7, 3), alternating, ~alternating,
        ~one_at(1000, 0), ~one_at(1000, 999),
        np.r_[np.ones(500, bool), np.zeros(70_000, bool), True],
    ]


def empirical_entropy_bits(mask: np.ndarray) -> float:
    return entropy_bits(mask.size, float(mask.mean()))


def golomb_parts(mask: np.ndarray, k: int) -> tuple[int, int]:
    """(unary bits, remainder bits) of the coded symbol's gaps, computed independently."""
    coded = ~mask if 2 * mask.sum() > mask.size else mask
    idx = np.flatnonzero(coded)
    gaps = idx - np.r_[-1, idx[:-1]] - 1
    return len(gaps) + int((gaps // 2**k).sum()), len(gaps) * k


# --- position codecs -------------------------------------------------------------------------

@pytest.mark.parametrize("codec", CODECS)
@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 5000), density=st.floats(0, 1), seed=st.integers(0, 2**32 - 1))
def test_round_trip_random(codec, n, density, seed):
    mask = random_mask(n, density, seed)
    impl = position_codec(codec)
    buf = impl.encode(mask)
    assert buf.dtype == np.uint8 and buf.ndim == 1
    np.testing.assert_array_equal(impl.decode(buf, n), mask)


@pytest.mark.parametrize("codec", CODECS)
@settings(max_examples=40, deadline=None)
@given(bits=st.lists(st.booleans(), min_size=1, max_size=300))
def test_round_trip_arbitrary(codec, bits):
    mask = np.array(bits, dtype=bool)
    impl = position_codec(codec)
    np.testing.assert_array_equal(impl.decode(impl.encode(mask), mask.size), mask)


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("mask", edge_masks(), ids=lambda m: f"n{m.size}_k{int(m.sum())}")
def test_round_trip_edges(codec, mask):
    impl = position_codec(codec)
    decoded = impl.decode(impl.encode(mask), mask.size)
    assert decoded.dtype == np.bool_
    np.testing.assert_array_equal(decoded, mask)


@pytest.mark.parametrize(
    "mask",
    edge_masks() + [random_mask(100_000, d, 1) for d in (0.003, 0.3, 0.7)],
    ids=lambda m: f"n{m.size}_k{int(m.sum())}",
)
def test_sizes_match_formulas(mask):
    n, k_active = mask.size, int(mask.sum())
    sizes = {name: position_codec(name).encode(mask).size for name in CODECS}
    assert sizes["bitmap"] == math.ceil(n / 8)
    idx = np.flatnonzero(mask)
    largest_gap = int(np.max(np.diff(idx, prepend=-1) - 1)) if k_active else 0
    width = next(w for w in (1, 2, 4, 8) if largest_gap < 256**w)
    assert sizes["index"] == 1 + width * k_active
    golomb = POSITION_CODECS.get("golomb").encode(mask)
    k = int(golomb[0]) & 0x3F
    unary, remainder = golomb_parts(mask, k)
    assert sizes["golomb"] == GOLOMB_HEADER + math.ceil(unary / 8) + math.ceil(remainder / 8)
    assert sizes["auto"] == 1 + min(sizes["bitmap"], sizes["index"], sizes["golomb"])


@pytest.mark.parametrize("density", [0.001, 0.03, 0.2, 0.4, 0.5, 0.6, 0.9])
def test_golomb_parameter_is_the_best(density):
    mask = random_mask(50_000, density, 2)
    k = int(POSITION_CODECS.get("golomb").encode(mask)[0]) & 0x3F
    cost = {j: sum(golomb_parts(mask, j)) for j in range(16)}
    assert cost[k] == min(cost.values())


@pytest.mark.parametrize("density", [0.5, 0.2, 0.1, 0.05, 0.8, 0.95])
def test_golomb_near_entropy(density):
    mask = random_mask(200_000, density, 3)
    bits = 8 * POSITION_CODECS.get("golomb").encode(mask).size
    assert bits <= 1.05 * empirical_entropy_bits(mask)


def test_wire_tags_are_registered_and_never_renumbered():
    assert POSITION_CODECS.tags() == {"bitmap": 0, "index": 1, "golomb": 2}
    assert codec_names() == ["auto", *sorted(POSITION_CODECS.tags())]


def test_a_codec_needs_its_own_wire_tag():
    codecs = PositionCodecs()
    with pytest.raises(ValueError, match="needs a wire tag"):
        codecs.register("untagged")
    with pytest.raises(ValueError, match="needs a wire tag"):
        codecs.register("too_big", tag=256)
    codecs.register("bitmap", tag=0)(BitmapCodec)
    with pytest.raises(ValueError, match="share tag 0"):
        codecs.register("bitmap2", tag=0)
    assert codecs.by_tag(0) is BitmapCodec and codecs.tags() == {"bitmap": 0}


def test_auto_tags_the_smallest():
    single = np.eye(1, 100, 5, dtype=bool)[0]
    tags = POSITION_CODECS.tags()
    for mask in (random_mask(10_000, 0.5), random_mask(10_000, 0.05), single):
        sizes = {name: POSITION_CODECS.get(name).encode(mask).size for name in tags}
        buf = encode_positions(mask, "auto")
        assert buf[0] == tags[min(sizes, key=sizes.get)]


@pytest.mark.parametrize("codec", ["bitmap", "index", "golomb"])
def test_tagged_buffers_decode_without_naming_the_codec(codec):
    mask = random_mask(3000, 0.3)
    buf = encode_positions(mask, codec)
    assert buf[0] == POSITION_CODECS.tags()[codec]
    assert buf.size == 1 + position_codec(codec).encode(mask).size
    np.testing.assert_array_equal(decode_positions(buf, mask.size), mask)


def test_unknown_codec_lists_allowed():
    with pytest.raises(ConfigError, match="auto, bitmap, golomb, index"):
        encode_positions(np.ones(3, bool), "huffman")
    with pytest.raises(ConfigError, match="auto, bitmap, golomb, index"):
        position_codec("huffman")


@pytest.mark.parametrize("codec", CODECS)
def test_encode_rejects_non_bool_or_2d(codec):
    with pytest.raises(ValueError):
        position_codec(codec).encode(np.ones(8, dtype=np.uint8))
    with pytest.raises(ValueError):
        position_codec(codec).encode(np.ones((2, 4), dtype=bool))


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("mask", [np.eye(1, 1000, 999, dtype=bool)[0], random_mask(1000, 0.5)])
def test_decode_rejects_index_beyond_length(codec, mask):
    with pytest.raises(ValueError):
        position_codec(codec).decode(position_codec(codec).encode(mask), 500)


def test_corrupt_buffers_raise():
    golomb = POSITION_CODECS.get("golomb").encode(random_mask(1000, 0.1))
    with pytest.raises(ValueError, match="unary"):
        POSITION_CODECS.get("golomb").decode(golomb[:-20], 1000)
    with pytest.raises(ValueError, match="tag"):
        decode_positions(np.array([9, 0], dtype=np.uint8), 8)
    with pytest.raises(ValueError, match="tag"):
        decode_positions(np.zeros(0, dtype=np.uint8), 8)
    with pytest.raises(ValueError, match="width"):
        POSITION_CODECS.get("index").decode(np.array([3, 0, 0], dtype=np.uint8), 8)


# --- values ----------------------------------------------------------------------------------

SPECIALS = np.array([0.0, -0.0, 1.0, -2.5, np.inf, -np.inf, 1e-40, 3.4e38, 1e-3], dtype=np.float32)


def test_float32_bit_exact():
    values = np.r_[SPECIALS, np.float32(np.nan), np.random.default_rng(0).standard_normal(1000)]
    values = values.astype(np.float32)
    enc = encode_values(values, "float32")
    assert enc.dtype == np.float32
    dec = decode_values(enc, "float32")
    np.testing.assert_array_equal(dec.view(np.uint32), values.view(np.uint32))


@pytest.mark.parametrize(
    "dtype, storage, rel", [("float16", np.float16, 2**-11), ("bfloat16", np.uint16, 2**-8)]
)
def test_reduced_precision_round_trip(dtype, storage, rel):
    values = (np.random.default_rng(1).standard_normal(10_000) * 0.05).astype(np.float32)
    enc = encode_values(values, dtype)
    assert enc.dtype == storage and enc.nbytes == 2 * values.size
    dec = decode_values(enc, dtype)
    assert dec.dtype == np.float32
    np.testing.assert_allclose(dec, values, rtol=rel, atol=1e-7 if dtype == "float16" else 0)


def test_bfloat16_matches_torch_rounding():
    rng = np.random.default_rng(2)
    values = np.r_[SPECIALS, rng.standard_normal(20_000), rng.random(1000) * 1e30]
    values = values.astype(np.float32)
    ties = (np.arange(1, 200, dtype=np.uint32) << 16 | 0x8000).view(np.float32)  # halfway cases
    values = np.r_[values, ties, -ties]
    expected = torch.from_numpy(values).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
    np.testing.assert_array_equal(encode_values(values, "bfloat16"), expected)
    nan = encode_values(np.array([np.nan], np.float32), "bfloat16")
    assert np.isnan(decode_values(nan, "bfloat16")).all()


def test_value_dtype_validation():
    with pytest.raises(ConfigError, match="float32, float16, bfloat16"):
        encode_values(np.ones(3, np.float32), "int8")
    with pytest.raises(ValueError, match="stored as"):
        decode_values(np.ones(3, np.float32), "bfloat16")


# --- reference accounting --------------------------------------------------------------------

def test_reference_dense_transfer():
    dense_bits = 25_024_192
    assert reference_upload_bits(CIFAR10NET_MASKED, CIFAR10NET_DENSE, 1.0, False) == dense_bits
    args = (CIFAR10NET_MASKED, CIFAR10NET_DENSE, 1.0)
    assert reference_download_bits(*args, mask_changed=False, first_round=False) == dense_bits
    assert round(dense_bits / 8e6, 3) == 3.128


def test_reference_upload_worked_example():
    uniform = reference_upload_bits(CIFAR10NET_MASKED, CIFAR10NET_DENSE, 0.2, False, 0.8)
    assert uniform == 32 * (156_354 + 236)
    # the reference's layer budgets at S=0.8 keep 103 + 492 + 153,438 + 2,126 + 240 weights
    erk_density = 156_399 / CIFAR10NET_MASKED
    erk = reference_upload_bits(CIFAR10NET_MASKED, CIFAR10NET_DENSE, erk_density, False)
    assert erk == 5_012_320 and round(erk / 8e6, 3) == 0.627
    assert round(20 * 400 * erk / 8e9, 1) == 5.0
    readjusted = reference_upload_bits(CIFAR10NET_MASKED, CIFAR10NET_DENSE, 0.2, True, 0.8)
    assert readjusted == uniform + 156_354
    assert reference_upload_bits(CIFAR10NET_MASKED, CIFAR10NET_DENSE, 0.2, True) == readjusted
    fp16 = reference_upload_bits(CIFAR10NET_MASKED, CIFAR10NET_DENSE, 0.2, False, fp16=True)
    assert 2.9 < fp16 / uniform < 3.1


def test_reference_download():
    args = (CIFAR10NET_MASKED, CIFAR10NET_DENSE, 0.2)
    assert reference_download_bits(*args, mask_changed=False, first_round=True) == 0
    assert reference_download_bits(*args, mask_changed=True, first_round=True) == CIFAR10NET_MASKED
    assert reference_download_bits(*args, mask_changed=True, first_round=False) == (
        CIFAR10NET_MASKED + 32 * (156_354 + 236)
    )


def test_entropy_bits():
    assert entropy_bits(1, 0.2) == pytest.approx(0.7219, abs=1e-4)
    assert entropy_bits(1000, 0.5) == pytest.approx(1000)
    assert entropy_bits(10, 0.0) == entropy_bits(10, 1.0) == 0.0
    assert entropy_bits(100, 0.1) == pytest.approx(entropy_bits(100, 0.9))
    with pytest.raises(ValueError):
        entropy_bits(10, 1.5)
