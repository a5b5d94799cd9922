"""`faithful=true`: each behaviour of the FedDST reference code is a setting of its own, switched on
together, and each does what the reference does (bibikar/feddst dst.py, models.py, datasets.py)."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from flwr.app import ConfigRecord
from torch import nn

from fedsparse.config import FAITHFUL_SETTINGS, load_config
from fedsparse.errors import ConfigError
from fedsparse.fl.sampling import sample_clients
from fedsparse.fl.strategies.feddst import FedDST
from fedsparse.train.client_update import fixed_order
from fedsparse.train.local import LocalTrainer
from tests.test_strategy_faults import N, _reply, _strategy

pytestmark = pytest.mark.usefixtures("task_identity")  # tests/conftest.py

DATA = os.environ.get("FEDSPARSE_DATA")


def test_faithful_switches_every_reference_setting_on() -> None:
    plain = load_config("cifar_noniid", [])
    cfg = load_config("cifar_noniid", ["faithful=true"])
    for key, value in FAITHFUL_SETTINGS.items():
        assert cfg.flat()[key] == value, key
        assert plain.flat()[key] != value, f"{key} is already the reference's without faithful"


def test_a_key_given_with_faithful_or_after_it_keeps_its_value(tmp_path: Path) -> None:
    cfg = load_config("feddst_cifar10", ["faithful=true", "double_softmax=false", "batch_order=shuffle"])
    assert (cfg.train.double_softmax, cfg.train.batch_order, cfg.readjust.regrow_from) == (False, "shuffle", "all")
    # a file that sets faithful: its own keys win, a command-line key wins over both
    run = tmp_path / "faithful_off_one.yaml"
    run.write_text("extends: feddst_cifar10\nfaithful: true\nregrow_from: inactive\n")
    cfg = load_config(str(run), ["normalize=dataset"])
    assert (cfg.readjust.regrow_from, cfg.data.normalize, cfg.train.double_softmax) == ("inactive", "dataset", True)
    # faithful=false given last switches nothing on
    assert load_config(str(run), ["faithful=false"]).train.double_softmax is False
    # a resolved config (a run's config.yaml) loads back unchanged
    saved = tmp_path / "config.yaml"
    saved.write_text(cfg.to_yaml())
    assert load_config(str(saved)) == cfg


def test_reference_settings_are_validated() -> None:
    with pytest.raises(ConfigError, match="readjust_counter"):
        load_config("cifar_noniid", ["readjust_counter=two"])
    with pytest.raises(ConfigError, match="aggregation_weight"):
        load_config("cifar_noniid", ["aggregation_weight=votes"])
    with pytest.raises(ConfigError, match="normalize"):
        load_config("cifar_noniid", ["dataset=fashion_mnist", "model=mnist_net", "normalize=reference"])


def test_readjustment_rounds_follow_the_reference_counter() -> None:
    def rounds(*argv: str) -> list[int]:
        cfg = load_config("feddst_cifar10", list(argv))
        strategy = SimpleNamespace(cfg=cfg)
        strategy.schedule_round = lambda r: FedDST.schedule_round(strategy, r)
        return [r for r in range(1, cfg.train.rounds + 1) if FedDST.readjusts(strategy, r)]

    assert rounds("faithful=true") == list(range(2, 200, 15))  # 2, 17, ..., 197
    assert rounds() == list(range(1, 200, 15))  # 1, 16, ..., 196
    # the reference tests its 0-based counter r: (r - 1) % R == 0 and r < R_end; at rounds=4,
    # R=1 (R_end = 2) it readjusts in its rounds r = 0, 1, i.e. rounds 1 and 2 counted from 1
    assert rounds("faithful=true", "rounds=4", "readjust_every=1") == [1, 2]
    assert rounds("rounds=4", "readjust_every=1") == [1]


def test_sampling_with_replacement_is_seeded_and_repeats_clients() -> None:
    pop = list(range(400))
    draws = [sample_clients(0, r, pop, 20, replace=True) for r in range(1, 40)]
    assert draws[0] == sample_clients(0, 1, pop, 20, replace=True) and len(draws[0]) == 20
    assert any(len(set(d)) < 20 for d in draws)  # ~38% of rounds draw someone twice


def test_a_client_drawn_twice_counts_twice_and_weights_follow_batches() -> None:
    """Round 1 with replacement draws 12 from 12 clients; the average must equal one made by hand
    with weight = (number of local batches) x (times drawn), as the reference's train_size()."""
    strategy = _strategy("fedavg", sample_with_replacement="true", aggregation_weight="batches",
                         batch_size=4)
    msgs = list(strategy.configure_train(1, None, ConfigRecord(), None))
    pids, draws = strategy.round_info["clients"], strategy.round_info["draws"]
    assert len(msgs) == len(pids) < N and sum(draws.values()) == N
    replies = [_reply(strategy, m, p) for p, m in zip(pids, msgs)]
    before = {n: t.clone() for n, t in strategy.state.items()}
    strategy.aggregate_train(1, replies)
    weight = {p: -(-(10 + p) // 4) * draws[p] for p in pids}  # ceil(examples / batch) x draws
    total = sum(weight.values())
    for name, t in before.items():
        expected = sum(weight[p] * (t + 0.1 * (p + 1)) for p in pids) / total
        assert torch.allclose(strategy.state[name], expected, atol=1e-6)
    assert strategy.round_info["num-examples"] == sum((10 + p) * draws[p] for p in pids)


def test_fixed_batch_order_and_last_minibatch_gradient() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3))
    x, y = torch.randn(40, 4), torch.randint(0, 3, (40,))
    order = fixed_order(0, 7, 40)
    assert torch.equal(order, fixed_order(0, 7, 40)) and not torch.equal(order, fixed_order(0, 8, 40))
    trainer = LocalTrainer(model, None, lr=0.01, momentum=0.9, weight_decay=1e-3, batch_size=32,
                           double_softmax=True)
    trainer.train_epochs(x, y, 3, torch.Generator().manual_seed(1), order=order)
    assert torch.equal(trainer.last_batch, order[32:])  # the 8-image remainder, every epoch
    grads = trainer.gradients(x, y, ["0.weight"], "last_batch", torch.Generator())
    model.zero_grad()
    idx = order[32:]
    torch.nn.functional.cross_entropy(torch.softmax(model(x[idx]), 1), y[idx]).backward()
    assert torch.equal(grads["0.weight"], model[0].weight.grad)


@pytest.mark.skipif(not DATA, reason="needs FEDSPARSE_DATA")
def test_reference_normalisation_and_magnitude_initial_mask() -> None:
    from fedsparse.experiment import build_experiment
    from fedsparse.fl.strategies.initial_mask import initial_mask
    from fedsparse.sparse.budgets import layer_budget

    cfg = load_config("feddst_mnist", ["faithful=true", "num_clients=20", "clients_per_round=5"])
    exp = build_experiment(cfg)
    assert exp.norm_stats == ((0.1307,), (0.3081,))
    x, _ = exp.client_train(0)
    raw = exp.data.train_x[torch.from_numpy(exp.split.train[0])].float() / 255
    assert torch.allclose(x, (raw - 0.1307) / 0.3081, atol=1e-5)
    strategy = FedDST(exp, torch.device("cpu"), {p: p for p in range(20)})
    mask = initial_mask(strategy, None)
    weights = dict(exp.new_model().named_parameters())
    budget = layer_budget("feddst_erk", {n: weights[n].shape for n in exp.masked_names}, 0.2)
    for name in exp.masked_names:
        kept = mask[name].reshape(-1)
        assert int(kept.sum()) == budget[name]
        magnitude = weights[name].detach().abs().reshape(-1)
        assert magnitude[kept].min() >= magnitude[~kept].max()  # the largest |w| are kept
