"""CommLedger totals, cumulative sums and checkpoint round trip."""

from __future__ import annotations

import json

import pytest

from fedsparse.comm import CommLedger


def filled() -> CommLedger:
    ledger = CommLedger()
    ledger.record(1, 7, "down", 1000, reference_bits=8000)
    ledger.record(1, 7, "up", 300, reference_bits=4000)
    ledger.record(1, 9, "up", 200)
    ledger.record(1, 9, "up", 50, reference_bits=800)  # a second tensor of the same transfer
    ledger.record(2, 7, "up", 400, reference_bits=1600)
    return ledger


def test_round_totals():
    totals = filled().round_totals(1)
    assert totals["upload_bytes"] == 550
    assert totals["download_bytes"] == 1000
    assert totals["upload_bytes_per_client"] == {7: 300, 9: 250}
    assert totals["download_bytes_per_client"] == {7: 1000}
    assert totals["reference_upload_bytes"] == 600
    assert totals["reference_download_bytes"] == 1000


def test_empty_round():
    totals = filled().round_totals(5)
    assert totals["upload_bytes"] == totals["download_bytes"] == 0
    assert totals["upload_bytes_per_client"] == {}
    assert totals["reference_upload_bytes"] == 0


def test_cumulative():
    ledger = filled()
    assert ledger.cumulative() == {
        "upload_bytes": 950,
        "reference_upload_bytes": 800,
        "download_bytes": 1000,
        "reference_download_bytes": 1000,
    }
    ledger.record(3, "c", "down", 5, reference_bits=12)
    assert ledger.cumulative()["download_bytes"] == 1005
    assert ledger.cumulative()["reference_download_bytes"] == 1001.5


def test_state_dict_json_round_trip():
    ledger = filled()
    restored = CommLedger()
    restored.load_state_dict(json.loads(json.dumps(ledger.state_dict())))
    assert restored.cumulative() == ledger.cumulative()
    for r in (1, 2):
        assert restored.round_totals(r) == ledger.round_totals(r)
    restored.record(2, 7, "up", 1)
    assert restored.round_totals(2)["upload_bytes_per_client"] == {7: 401}


def test_validation():
    ledger = CommLedger()
    with pytest.raises(ValueError, match="direction"):
        ledger.record(1, 0, "sideways", 10)
    with pytest.raises(ValueError, match="negative"):
        ledger.record(1, 0, "up", -1)
