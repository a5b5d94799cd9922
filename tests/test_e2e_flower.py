"""End-to-end runs through Flower's simulation engine (real Ray actors) on real MNIST.

The ServerApp runs as a thread of this process, so the test wraps the strategy's Flower hooks to
see every message that really went out and came back.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from fedsparse.config import load_config
from fedsparse.fl.payload import decode_state
from fedsparse.fl.sampling import sample_clients
from fedsparse.fl.strategies.base import SparseFedAvg
from fedsparse.fl.wire import message_bytes
from fedsparse.runner import run_simulation

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not os.environ.get("FEDSPARSE_DATA"), reason="needs FEDSPARSE_DATA (real MNIST)"),
]


def _cfg(tmp_path: Path, **overrides: object):
    args = {"dataset": "mnist", "model": "mlp", "num_clients": 10, "clients_per_round": 3,
            "rounds": 3, "local_epochs": 2, "batch_size": 16, "readjust_every": 1,
            "readjust_until": 3, "alpha": 0.05, "eval_every": 1, "num_actors": 1,
            "progress": False, "output_dir": str(tmp_path), "name": "e2e"}
    args.update(overrides)
    return load_config("cifar_noniid", [f"{k}={v}" for k, v in args.items()])


def _rows(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> dict[str, list]:
    """Every train message sent and reply received, with the strategy that handled them."""
    seen: dict[str, list] = {"down": [], "up": [], "strategy": []}
    configure, aggregate = SparseFedAvg.configure_train, SparseFedAvg.aggregate_train

    def spy_configure(self, server_round, arrays, config, grid):  # noqa: ANN001
        messages = list(configure(self, server_round, arrays, config, grid))
        seen["down"] += [(server_round, self.mask.clone() if self.mask is not None else None, m)
                         for m in messages]
        seen["strategy"] = [self]
        return messages

    def spy_aggregate(self, server_round, replies):  # noqa: ANN001
        replies = list(replies)
        seen["up"] += [(server_round, r) for r in replies]
        return aggregate(self, server_round, replies)

    monkeypatch.setattr(SparseFedAvg, "configure_train", spy_configure)
    monkeypatch.setattr(SparseFedAvg, "aggregate_train", spy_aggregate)
    return seen


def test_feddst_three_rounds_sparse_payloads_and_exact_ledger(tmp_path: Path, captured: dict) -> None:
    cfg = _cfg(tmp_path)
    run = run_simulation(cfg)
    rows = _rows(run)
    assert [r["round"] for r in rows] == [0, 1, 2, 3]
    assert all(r["failures"] == {"errors": 0, "rejected": 0, "dropped": 0, "missing": 0}
               for r in rows[1:])
    strategy = captured["strategy"][0]
    shapes, masked = strategy.shapes, strategy.masked
    n_masked = sum(int(torch.tensor(shapes[n]).prod()) for n in masked)

    # Downloads: only active values travel; positions only to clients whose mask is stale.
    for server_round, mask, msg in captured["down"]:
        state, got_mask, _ = decode_state(msg.content["arrays"], shapes, masked, mask.to("cpu"),
                                          value_dtype=cfg.comm.value_dtype)
        assert got_mask == mask.to("cpu")
        n_values = msg.content["arrays"]["values"].numpy().size
        assert n_values == mask.num_active() + strategy.n_dense < n_masked
        for n in masked:
            assert (state[n][~got_mask[n]] == 0).all()

    # Uploads: values only at the client's mask, which keeps the global budget; readjusted masks
    # (round 1 and 2 readjust) travel with the reply.
    active_budget = round((1 - cfg.mask.sparsity) * n_masked)
    uploaded_positions = 0
    for _, reply in captured["up"]:
        record = reply.content["arrays"]
        uploaded_positions += "positions" in record
        if "positions" not in record:
            continue
        state, mask, _ = decode_state(record, shapes, masked, None, value_dtype=cfg.comm.value_dtype)
        assert abs(mask.num_active() - active_budget) <= len(masked)
        assert record["values"].numpy().size == mask.num_active() + strategy.n_dense
        for n in masked:
            assert (state[n][~mask[n]] == 0).all()
    assert uploaded_positions >= cfg.train.clients_per_round  # readjusted masks were uploaded

    # The ledger equals the serialized sizes of exactly these messages.
    for server_round in (1, 2, 3):
        row = rows[server_round]
        down = sum(message_bytes(m) for r, _, m in captured["down"] if r == server_round)
        up = sum(message_bytes(m) for r, m in captured["up"] if r == server_round)
        assert row["download_bytes"] == down and row["upload_bytes"] == up
        assert sum(row["upload_bytes_per_client"].values()) == up
    assert rows[-1]["cumulative_upload_bytes"] == sum(r["upload_bytes"] for r in rows)
    # Regrown weights entered the global mask (the mask changed on readjustment rounds).
    assert rows[1]["mask_changes"] > 0
    assert 0.0 < rows[-1]["density"] <= 1 - cfg.mask.sparsity + 1e-6
    assert rows[-1]["central_loss"] == rows[-1]["central_loss"]  # evaluated, finite
    for name in ("config.yaml", "summary.json", "accuracy_vs_round.png", "mask_churn.png"):
        assert (run / name).is_file()


def test_another_seed_samples_other_clients_and_learns(tmp_path: Path) -> None:
    """One run with seed 1: its rounds sample the clients seed 1 draws, not seed 0's (so its
    metrics differ; that the same seed gives the same metrics is tests/test_golden.py), and two
    rounds of 3 iid clients learn MNIST well past chance."""
    iid = {"strategy": "fedavg", "split": "iid", "num_clients": 60, "rounds": 2, "local_epochs": 1,
           "readjust_until": 1, "seed": 1}
    rows = _rows(run_simulation(_cfg(tmp_path, **iid)))
    for r in rows[1:]:
        assert r["clients"] == sample_clients(1, r["round"], range(60), 3) != sample_clients(0, r["round"], range(60), 3)
    assert rows[-1]["central_accuracy"] > 0.5


# every method of configs/methods.yaml also runs through Flower, with exact metrics, in
# tests/test_golden.py; this adds federated scoring (round 0 on the clients)
@pytest.mark.parametrize("overrides", [
    {"strategy": "fixed_mask", "criterion": "snip", "scoring": "federated"},
], ids=["fixed_mask_federated_snip"])
def test_every_strategy_runs_through_flower(tmp_path: Path, overrides: dict) -> None:
    cfg = _cfg(tmp_path, rounds=2, local_epochs=1, readjust_until=2, **overrides)
    rows = _rows(run_simulation(cfg))
    assert [r["round"] for r in rows] == [0, 1, 2]
    assert all(r["failures"] == {"errors": 0, "rejected": 0, "dropped": 0, "missing": 0}
               for r in rows[1:])
    assert all(r["upload_bytes"] > 0 and "central_accuracy" in r for r in rows[1:])
    sparse = cfg.train.strategy in ("fixed_mask", "feddst")
    assert rows[-1]["density"] == pytest.approx(1 - cfg.mask.sparsity, abs=1e-3) if sparse else rows[-1]["density"] == 1.0
    if cfg.train.strategy == "fixed_mask":
        # round 0 carries the federated scoring: dense scores up from every sampled client
        weights = 784 * 300 + 300 * 100 + 100 * 10  # the MLP's weight matrices, one float32 score each
        assert rows[0]["upload_bytes"] > cfg.train.clients_per_round * 4 * weights
        assert rows[1]["mask_changes"] == rows[2]["mask_changes"] == 0
