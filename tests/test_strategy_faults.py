"""The real strategies against crafted Flower reply messages: malformed, failed, duplicated and lost
replies are counted and never reach the global model; checkpoint state round-trips exactly; a
node's durable mask store serves the right mask after a restart."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from flwr.app import Array, ArrayRecord, ConfigRecord, Error, Message, MetricRecord, RecordDict
from torch import nn

from fedsparse.config import Config, load_config
from fedsparse.fl import faults
from fedsparse.fl.checkpoint import load_checkpoint, save_checkpoint
from fedsparse.fl.node_setup import SETUP
from fedsparse.fl.node_state import DiskMaskStore
from fedsparse.fl.payload import decode_masks, decode_state, encode_state
from fedsparse.fl.strategies import STRATEGIES
from fedsparse.fl.wire import message_bytes
from fedsparse.metrics.run_folder import RunFolder
from fedsparse.sparse.budgets import layer_budget
from fedsparse.sparse.mask import Mask

N = 12  # clients, all sampled every round
MASKED = ["0.weight", "2.weight"]


@dataclass
class TinyExperiment:
    """What a strategy reads from an Experiment, without data: config, model, masked names."""

    cfg: Config
    masked_names: list[str]

    def new_model(self) -> nn.Module:
        torch.manual_seed(self.cfg.seed)
        return nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))


pytestmark = pytest.mark.usefixtures("task_identity")  # tests/conftest.py


def _strategy(name: str = "feddst", **overrides: object):
    args = {"strategy": name, "num_clients": N, "clients_per_round": N, "sparsity": 0.5,
            "readjust_every": 1, "readjust_until": 5, "codec": "index", **overrides}
    cfg = load_config("cifar_noniid", [f"{k}={v}" for k, v in args.items()])
    sparse = STRATEGIES.get(name).sparse
    strategy = STRATEGIES.get(name).load()(TinyExperiment(cfg, MASKED if sparse else []),
                                           torch.device("cpu"), {p: 100 + p for p in range(N)})
    if sparse:
        strategy.budget = layer_budget(cfg.mask.budget, {n: strategy.shapes[n] for n in MASKED}, 0.5)
        g = torch.Generator().manual_seed(1)
        strategy.set_mask(Mask({n: torch.rand(strategy.shapes[n], generator=g) < 0.5 for n in MASKED}))
    return strategy


def _reply(strategy, msg: Message, pid: int, *, step: float = 0.1, arrays: ArrayRecord | None = None,
           metrics: dict | None = None) -> Message:
    """What an honest client sends back: the global weights moved by `step`, with its metrics."""
    if arrays is None:
        state, mask, _ = decode_state(msg.content["arrays"], strategy.shapes, strategy.masked,
                                      strategy.mask, value_dtype="float32")
        state = {n: (t + step * (pid + 1)) * (mask[n] if n in strategy.masked else 1)
                 for n, t in state.items()}
        arrays = encode_state(state, strategy.masked, mask, send_positions=False, codec="index",
                              value_dtype="float32")
    m = {"partition-id": pid, "num-examples": 10 + pid, "train_loss": 1.0 + pid, "mask_changes": 0}
    m.update(metrics or {})
    return Message(RecordDict({"arrays": arrays, "metrics": MetricRecord(m)}), reply_to=msg)


def _messages(strategy, server_round: int = 1) -> dict[int, Message]:
    msgs = list(strategy.configure_train(server_round, None, ConfigRecord(), None))
    return {p: m for p, m in zip(strategy.round_info["clients"], msgs)}


def _malformed(strategy, msgs: dict[int, Message]) -> list[Message]:
    """One broken reply per client (12 kinds); each must be rejected."""
    good = {p: _reply(strategy, m, p).content["arrays"] for p, m in msgs.items()}
    values = {p: good[p]["values"].numpy() for p in msgs}
    full = Mask({n: torch.ones(strategy.shapes[n], dtype=torch.bool) for n in MASKED})
    over = encode_state({n: torch.ones(s) for n, s in strategy.shapes.items()}, MASKED, full,
                        send_positions=True, codec="index", value_dtype="float32")
    nan = values[0].copy()
    nan[3] = np.nan
    inf = values[1].copy()
    inf[0] = np.inf
    return [
        _reply(strategy, msgs[0], 0, arrays=ArrayRecord({"values": Array(nan)})),           # NaN
        _reply(strategy, msgs[1], 1, arrays=ArrayRecord({"values": Array(inf)})),           # Inf
        _reply(strategy, msgs[2], 2, arrays=ArrayRecord({"values": Array(values[2][:-1])})),  # short
        _reply(strategy, msgs[3], 3, arrays=ArrayRecord(                                    # 2-D
            {"values": Array(values[3].reshape(1, -1))})),
        _reply(strategy, msgs[4], 4, arrays=ArrayRecord(                                    # extra key
            {"values": Array(values[4]), "extra": Array(values[4])})),
        _reply(strategy, msgs[5], 5, arrays=over),                                          # over budget
        _reply(strategy, msgs[6], 6, metrics={"partition-id": 9}),                           # wrong sender
        _reply(strategy, msgs[7], 7, metrics={"num-examples": 0}),                          # no examples
        _reply(strategy, msgs[8], 8, metrics={"train_loss": float("nan")}),                  # NaN loss
        Message(RecordDict({"metrics": MetricRecord({"partition-id": 9, "num-examples": 1})}),
                reply_to=msgs[9]),                                                          # no arrays
        Message(RecordDict({"arrays": good[10]}), reply_to=msgs[10]),                       # no metrics
        _reply(strategy, msgs[11], 11, arrays=ArrayRecord(                                  # bad positions
            {"values": Array(values[11]), "positions": Array(np.zeros(3, np.uint8)),
             "position_sizes": Array(np.asarray([1, 2, 3]))})),
    ]


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[n], b[n]) for n in a)


@pytest.mark.parametrize("name", ["feddst", "fedavg", "fedavgm"])
def test_all_malformed_replies_are_rejected_and_the_model_is_unchanged(name: str) -> None:
    strategy = _strategy(name)
    before = {n: t.clone() for n, t in strategy.state.items()}
    mask, version = strategy.mask, strategy.mask_version
    replies = _malformed(strategy, _messages(strategy))
    strategy.aggregate_train(1, replies)
    assert strategy.round_info["failures"] == {"errors": 0, "rejected": N, "dropped": 0, "missing": 0}
    assert _same(strategy.state, before) and strategy.mask == mask and strategy.mask_version == version
    assert "train_loss" not in strategy.round_info
    assert strategy.ledger.round_totals(1)["upload_bytes"] > 0  # what arrived is still counted
    assert strategy.client_mask_version == {}  # nobody is taken to hold the mask


def test_only_good_replies_reach_the_model() -> None:
    mixed, clean = _strategy(), _strategy()
    msgs, clean_msgs = _messages(mixed), _messages(clean)
    bad = _malformed(mixed, msgs)
    good_pids = [0, 3, 5]
    error = Message(Error(code=0, reason="boom"), reply_to=msgs[1])
    duplicate = _reply(mixed, msgs[3], 3)
    stranger = Message(RecordDict({}), dst_node_id=999, message_type="train")
    stranger = _reply(mixed, stranger, 4, arrays=duplicate.content["arrays"])  # node 999: no partition
    replies = ([_reply(mixed, msgs[p], p) for p in good_pids] + [error, duplicate, stranger]
               + [b for b in bad if b.metadata.src_node_id not in (101, 100, 103, 105)])
    mixed.aggregate_train(1, replies[::-1])  # arrival order does not matter
    clean.aggregate_train(1, [_reply(clean, clean_msgs[p], p) for p in good_pids])
    assert mixed.round_info["failures"] == {"errors": 1, "rejected": 2 + N - 4, "dropped": 0,
                                           "missing": 0}
    assert _same(mixed.state, clean.state) and mixed.mask == clean.mask
    assert mixed.round_info["train_loss"] == clean.round_info["train_loss"]
    assert sorted(mixed.client_mask_version) == good_pids


def test_lost_replies_are_dropped_unread_and_uncounted() -> None:
    strategy = _strategy(client_dropout_rate=0.5)
    msgs = _messages(strategy)
    lost = [p for p in msgs if faults.drops_out(strategy.cfg.seed, 1, p, 0.5)]
    assert 0 < len(lost) < N
    strategy.aggregate_train(1, [_reply(strategy, m, p) for p, m in msgs.items() if p != 0])
    f = strategy.round_info["failures"]
    assert f == {"errors": 0, "rejected": 0, "dropped": len(set(lost) - {0}), "missing": 1}
    uploaded = strategy.ledger.round_totals(1)["upload_bytes_per_client"]
    assert sorted(uploaded) == sorted(set(msgs) - set(lost) - {0})


def test_fault_draws_are_seeded_per_round_and_partition() -> None:
    draws = [[faults.fails(3, r, p, 0.3) for p in range(200)] for r in (1, 2)]
    assert draws[0] == [faults.fails(3, 1, p, 0.3) for p in range(200)]
    assert draws[0] != draws[1] and 30 < sum(draws[0]) < 90
    assert not any(faults.fails(3, 1, p, 0.0) or faults.drops_out(3, 1, p, 0.0) for p in range(200))
    assert [faults.fails(3, 1, p, 0.3) for p in range(50)] != [faults.drops_out(3, 1, p, 0.3)
                                                               for p in range(50)]


@pytest.mark.parametrize("name", ["feddst", "fedavgm"])
def test_checkpoint_round_trip_restores_the_strategy_exactly(name: str, tmp_path: Path) -> None:
    strategy = _strategy(name)
    msgs = _messages(strategy)
    strategy.aggregate_train(1, [_reply(strategy, m, p) for p, m in msgs.items()])
    run = RunFolder.create(str(tmp_path), "ck", 0)
    save_checkpoint(run, 1, strategy)
    save_checkpoint(run, 1, strategy)  # rewriting is harmless
    assert len(list((run.path / "checkpoint").glob("tensors-*.pt"))) == 1
    done, state = load_checkpoint(run.path)
    fresh = _strategy(name)
    fresh.load_state_dict(state)
    assert done == 1 and _same(fresh.state, strategy.state) and fresh.mask == strategy.mask
    assert fresh.mask_version == strategy.mask_version
    assert fresh.client_mask_version == strategy.client_mask_version
    assert fresh.ledger.state_dict() == strategy.ledger.state_dict()
    if name == "fedavgm":
        assert _same(fresh.velocity, strategy.velocity) and any(v.abs().sum() > 0 for v in fresh.velocity.values())
    else:
        assert fresh.budget == strategy.budget
    # the next round goes on identically from the restored state
    for s in (strategy, fresh):
        s.aggregate_train(2, [_reply(s, m, p, step=0.2) for p, m in _messages(s, 2).items()])
    assert _same(fresh.state, strategy.state) and fresh.ledger.cumulative() == strategy.ledger.cumulative()


def test_setup_goes_with_first_messages_and_a_restart_resends_it_at_its_own_cost(tmp_path: Path) -> None:
    """The setup record travels in the first message to each partition (again after an error
    reply: Flower drops a failed node's context), counted in that round. After a restart (the
    strategy restored from its checkpoint, nodes without their setup) every message carries it
    again, yet each round's ledger equals the uninterrupted run's: the extra bytes go to `resent`."""
    whole = _strategy(clients_per_round=6)
    sent = {}
    for server_round in (1, 2):  # seed 0: {3, 5, 7, 8, 9, 10}, then {0, 2, 4, 6, 7, 10}
        msgs = _messages(whole, server_round)
        sent[server_round] = msgs
        replies = [Message(Error(code=0, reason="boom"), reply_to=m) if (server_round, p) == (1, 7)
                   else _reply(whole, m, p) for p, m in msgs.items()]
        whole.aggregate_train(server_round, replies)
    carried = {r: sorted(p for p, m in msgs.items() if SETUP in m.content) for r, msgs in sent.items()}
    assert carried == {1: [3, 5, 7, 8, 9, 10], 2: [0, 2, 4, 6, 7]}  # 7 failed in round 1
    assert dict(sent[1][3].content[SETUP]) == {"yaml": whole.cfg.wire_yaml()}
    for server_round, msgs in sent.items():
        assert whole.ledger.round_totals(server_round)["download_bytes_per_client"] == {
            p: message_bytes(m) for p, m in msgs.items()}
    run = RunFolder.create(str(tmp_path), "ck", 0)
    save_checkpoint(run, 2, whole)
    resumed = _strategy(clients_per_round=6)
    resumed.load_state_dict(load_checkpoint(run.path)[1])
    assert resumed.node_setup.held == {0, 2, 3, 4, 5, 6, 7, 8, 9, 10} and not resumed.node_setup.here
    a, b = _messages(whole, 3), _messages(resumed, 3)  # {3, 7, 8, 9, 10, 11}
    assert sorted(p for p, m in a.items() if SETUP in m.content) == [11]
    assert all(SETUP in m.content for m in b.values())
    assert resumed.ledger.round_totals(3) == whole.ledger.round_totals(3)
    assert resumed.node_setup.resent.round_totals(3)["download_bytes_per_client"] == {
        p: message_bytes(b[p]) - message_bytes(a[p]) for p in (3, 7, 8, 9, 10)}
    assert all(message_bytes(b[p]) - message_bytes(a[p]) > len(whole.cfg.wire_yaml()) for p in (3, 7))
    for s, msgs in ((whole, a), (resumed, b)):
        s.aggregate_train(3, [_reply(s, m, p) for p, m in msgs.items()])
    assert resumed.ledger.state_dict() == whole.ledger.state_dict()
    assert resumed.node_setup.here == {3, 7, 8, 9, 10, 11}
    assert not any(SETUP in m.content for p, m in _messages(resumed, 4).items() if p in resumed.node_setup.here)


def test_a_checkpoint_from_before_lazy_setup_counts_every_node_as_set_up(tmp_path: Path) -> None:
    """Checkpoints without `client_setup` were written by runs that set every node up before
    round 1: resumed, every setup sent again is the restart's cost, none a round's."""
    state = _strategy().state_dict()
    del state["client_setup"]
    resumed = _strategy()
    resumed.load_state_dict(state)
    assert resumed.node_setup.held == set(range(N))
    msgs = _messages(resumed)
    assert all(SETUP in m.content for m in msgs.values())
    assert sorted(resumed.node_setup.resent.round_totals(1)["download_bytes_per_client"]) == list(range(N))


def test_damaged_checkpoint_is_refused(tmp_path: Path) -> None:
    from fedsparse.errors import DataError

    strategy = _strategy()
    run = RunFolder.create(str(tmp_path), "ck", 0)
    folder = save_checkpoint(run, 0, strategy)
    tensors = next(folder.glob("tensors-*.pt"))
    tensors.write_bytes(tensors.read_bytes()[:-10])
    with pytest.raises(DataError, match="damaged"):
        load_checkpoint(run.path)


def _positions(strategy, seed: int) -> ArrayRecord:
    g = torch.Generator().manual_seed(seed)
    mask = Mask({n: torch.rand(strategy.shapes[n], generator=g) < 0.5 for n in MASKED})
    return encode_state(strategy.state, MASKED, mask, send_positions=True, codec="index",
                        value_dtype="float32")


def test_disk_mask_store_serves_the_mask_held_before_each_round(tmp_path: Path) -> None:
    strategy = _strategy()
    records = {r: _positions(strategy, r) for r in (1, 3, 5, 6)}

    def mask_of(rec: ArrayRecord) -> Mask:
        return decode_masks(rec, strategy.shapes, MASKED)

    store = DiskMaskStore(tmp_path / "node", checkpoint_every=2)
    assert store.load(1) is None

    def files() -> list[str]:
        return sorted(p.name for p in (tmp_path / "node").iterdir())

    store.save(1, 1, records[1])
    store.save(3, 2, records[3])
    # killed during round 4; the resumed run replays round 3 from the checkpoint of round 2: the
    # node answers with what it held before round 3 (version 1), not its newer mask of round 3
    version, rec = store.load(3)
    assert version == 1 and mask_of(rec) == mask_of(records[1])
    assert store.load(4)[0] == 2 and mask_of(store.load(4)[1]) == mask_of(records[3])
    store.save(3, 2, records[3])
    assert files() == ["mask-r00000001.npz", "mask-r00000003.npz"]
    # round 5 runs after the checkpoint of round 4: only the newest record up to round 4 is kept
    store.save(5, 3, records[5])
    store.save(6, 4, records[6])
    assert files() == ["mask-r00000003.npz", "mask-r00000005.npz", "mask-r00000006.npz"]
    # killed in round 6 and resumed from round 4: replaying round 5 removes the killed future
    assert store.load(5)[0] == 2
    store.save(5, 3, records[5])
    assert files() == ["mask-r00000003.npz", "mask-r00000005.npz"]
