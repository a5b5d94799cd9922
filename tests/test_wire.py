"""Byte counting of outgoing messages: counts unchanged, and counting leaves no second copy of
the data for Ray to pickle."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord, ConfigRecord, RecordDict
from ray import cloudpickle

from fedsparse.fl import flower_patches
from fedsparse.fl.wire import message_bytes, outgoing_bytes


@pytest.fixture
def patches_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Flower patches apply in this test, whatever `FEDSPARSE_FLOWER_PATCHES` or an earlier
    run's `flower_patches=false` says (these tests are about what they change)."""
    if not flower_patches.supported():
        pytest.skip("the Flower patches do not apply to this flwr version")
    monkeypatch.delenv(flower_patches.ENV_VAR, raising=False)
    monkeypatch.setattr(flower_patches, "_off_by_config", False)


def _messages(shared: ArrayRecord, n: int) -> list[SimpleNamespace]:
    """Stand-ins with a `content`, as the strategy builds them: one record shared by all."""
    return [SimpleNamespace(content=RecordDict({"arrays": shared, "config": ConfigRecord({"round": i})}))
            for i in range(n)]


def test_outgoing_bytes_counts_like_message_bytes_and_releases_chunk_views(
        patches_on: None) -> None:  # noqa: ARG001
    values = np.random.default_rng(0).standard_normal(300_000).astype(np.float32)
    data_bytes = values.nbytes
    shared = ArrayRecord({"values": Array(values)})
    messages = _messages(shared, 3)
    expected = [message_bytes(m) for m in _messages(ArrayRecord({"values": Array(values)}), 3)]
    assert expected[0] > data_bytes  # data + headers of every object

    assert len(cloudpickle.dumps(messages[0].content)) < 1.1 * data_bytes
    message_bytes(messages[0])  # Flower caches the chunk views on the array...
    assert len(cloudpickle.dumps(messages[0].content)) > 2 * data_bytes  # ...and they get pickled

    sizes = outgoing_bytes(messages)
    assert sizes == expected
    assert data_bytes < len(cloudpickle.dumps(messages[0].content)) < 1.1 * data_bytes
    assert outgoing_bytes(messages) == expected  # counting again gives the same sizes


def test_outgoing_bytes_serializes_each_shared_record_once(monkeypatch) -> None:  # noqa: ANN001
    rng = np.random.default_rng(1)
    with_positions = ArrayRecord({"values": Array(rng.standard_normal(1000).astype(np.float32)),
                                  "positions": Array(rng.integers(0, 255, 40).astype(np.uint8))})
    values_only = ArrayRecord({"values": Array(rng.standard_normal(1000).astype(np.float32))})
    messages = _messages(with_positions, 3) + _messages(values_only, 4)
    expected = [message_bytes(m) for m in messages]
    assert expected[0] > expected[-1]

    calls = []
    deflate = Array.deflate
    monkeypatch.setattr(Array, "deflate", lambda self: calls.append(self) or deflate(self))
    assert outgoing_bytes(messages) == expected
    assert len(calls) == 3  # the three arrays of the two records, not once per message


def test_message_bytes_hashes_each_object_once(monkeypatch, patches_on: None) -> None:  # noqa: ANN001, ARG001
    """Each object's SHA-256 id is computed once per count, not again by every parent."""
    from flwr.supercore.inflatable import inflatable_object

    rng = np.random.default_rng(2)
    values, positions = rng.standard_normal(5000).astype(np.float32), rng.integers(0, 255, 40)

    def message() -> SimpleNamespace:
        return _messages(ArrayRecord({"values": Array(values),
                                      "positions": Array(positions.astype(np.uint8))}), 1)[0]

    expected = message_bytes(message())
    counted = message()
    hashed = []
    sha = inflatable_object.get_object_id
    monkeypatch.setattr(inflatable_object, "get_object_id",
                        lambda content: hashed.append(len(content)) or sha(content))
    assert message_bytes(counted) == expected
    # record dict, array record, config record, two arrays, two array chunks
    assert len(hashed) == 7
