"""Federated splits: properties of every split, the FedDST pathological setting, and parameter checks."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fedsparse.data.splits import SPLITS, ClientSplit, make_split, split_params
from fedsparse.errors import ConfigError

FEW = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def labelled_data(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, int]:
    """(train labels, test labels, num_clients) for a small dataset of 2-6 classes."""
    num_classes = draw(st.integers(2, 6))
    train_counts = draw(st.lists(st.integers(20, 60), min_size=num_classes, max_size=num_classes))
    test_counts = draw(st.lists(st.integers(3, 12), min_size=num_classes, max_size=num_classes))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    train = rng.permutation(np.repeat(np.arange(num_classes), train_counts))
    test = rng.permutation(np.repeat(np.arange(num_classes), test_counts))
    return train, test, draw(st.integers(1, 8))


SPLIT_CASES = [
    ("iid", {}),
    ("dirichlet", {"alpha": 0.3, "min_size": 0}),
    ("dirichlet", {"alpha": 1.0, "min_size": 0, "test_split": "classes"}),
    ("dirichlet", {"alpha": 0.5, "min_size": 0, "test_split": "iid"}),
    ("pathological", {"classes_per_client": 2, "samples_per_class": 2}),  # always feasible: >= 20 shards
    ("shards", {"shards_per_client": 2}),
]
CASE_IDS = [f"{name}-{'-'.join(map(str, params.values()))}" for name, params in SPLIT_CASES]


def _same(a: ClientSplit, b: ClientSplit) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a.train + a.test, b.train + b.test, strict=True))


def _classes_of(split: ClientSplit, train_labels: np.ndarray) -> list[set[int]]:
    return [set(np.unique(train_labels[idx]).tolist()) for idx in split.train]


@pytest.mark.parametrize(("name", "params"), SPLIT_CASES, ids=CASE_IDS)
@FEW
@given(data=labelled_data(), seed=st.integers(0, 1000))
def test_train_indices_disjoint_and_in_range(name: str, params: dict, data: tuple, seed: int) -> None:
    train_labels, test_labels, num_clients = data
    split = make_split(name, train_labels, test_labels, num_clients, seed, **params)
    assert split.num_clients == num_clients == len(split.test)
    assert split.num_classes == int(train_labels.max()) + 1
    everything = np.concatenate(split.train)
    assert everything.dtype == np.int64
    assert len(np.unique(everything)) == len(everything), "a train image is given to two clients"
    assert everything.min() >= 0 and everything.max() < len(train_labels)
    for idx in split.test:
        assert idx.dtype == np.int64
        assert len(np.unique(idx)) == len(idx)
        assert len(idx) == 0 or (idx.min() >= 0 and idx.max() < len(test_labels))
    assert split.label_histogram(train_labels).sum() == len(everything)


@pytest.mark.parametrize(("name", "params"), SPLIT_CASES, ids=CASE_IDS)
def test_same_seed_same_split_other_seed_differs(name: str, params: dict) -> None:
    rng = np.random.default_rng(0)
    train, test = rng.integers(0, 5, 600), rng.integers(0, 5, 100)
    first = make_split(name, train, test, 6, seed=3, **params)
    assert _same(first, make_split(name, train, test, 6, seed=3, **params))
    assert not _same(first, make_split(name, train, test, 6, seed=4, **params))


@FEW
@given(
    data=labelled_data(), per_client=st.integers(1, 3), shard=st.integers(1, 10), seed=st.integers(0, 1000)
)
def test_pathological_sizes_and_classes_exact(data: tuple, per_client: int, shard: int, seed: int) -> None:
    train_labels, test_labels, num_clients = data
    available = int((np.bincount(train_labels) // shard).sum())
    num_clients = min(num_clients, available // per_client)
    split = make_split(
        "pathological", train_labels, test_labels, num_clients, seed, classes_per_client=per_client,
        samples_per_class=shard,
    )
    assert (split.sizes() == per_client * shard).all()
    hist = split.label_histogram(train_labels)
    assert ((hist > 0).sum(axis=1) <= per_client).all()
    assert (hist % shard == 0).all(), "a shard mixes labels"
    for classes, test_idx in zip(_classes_of(split, train_labels), split.test, strict=True):
        np.testing.assert_array_equal(test_idx, np.flatnonzero(np.isin(test_labels, list(classes))))


def test_pathological_feddst_cifar10_setting() -> None:
    train, test = np.repeat(np.arange(10), 5000), np.repeat(np.arange(10), 1000)
    split = make_split("pathological", train, test, num_clients=400, seed=0)
    assert (split.sizes() == 40).all()
    classes = (split.label_histogram(train) > 0).sum(axis=1)
    assert classes.max() <= 2 and (classes == 2).mean() > 0.8
    assert (split.test_sizes() == classes * 1000).all()


@FEW
@given(data=labelled_data(), per_client=st.integers(1, 3), seed=st.integers(0, 1000))
def test_shards_equal_sizes_and_test_by_classes(data: tuple, per_client: int, seed: int) -> None:
    train_labels, test_labels, num_clients = data
    split = make_split("shards", train_labels, test_labels, num_clients, seed, shards_per_client=per_client)
    shard_size = len(train_labels) // (num_clients * per_client)
    assert (split.sizes() == per_client * shard_size).all()
    for classes, test_idx in zip(_classes_of(split, train_labels), split.test, strict=True):
        assert set(np.unique(test_labels[test_idx]).tolist()) == classes & set(test_labels.tolist())


@FEW
@given(data=labelled_data(), seed=st.integers(0, 1000))
def test_iid_covers_everything_in_equal_shares(data: tuple, seed: int) -> None:
    train_labels, test_labels, num_clients = data
    split = make_split("iid", train_labels, test_labels, num_clients, seed)
    assert split.sizes().max() - split.sizes().min() <= 1
    assert np.array_equal(np.sort(np.concatenate(split.train)), np.arange(len(train_labels)))
    assert np.array_equal(np.sort(np.concatenate(split.test)), np.arange(len(test_labels)))


@FEW
@given(data=labelled_data(), alpha=st.floats(0.05, 10.0), seed=st.integers(0, 1000))
def test_dirichlet_assigns_all_train_and_proportional_test(data: tuple, alpha: float, seed: int) -> None:
    train_labels, test_labels, num_clients = data
    split = make_split("dirichlet", train_labels, test_labels, num_clients, seed, alpha=alpha, min_size=0)
    assert np.array_equal(np.sort(np.concatenate(split.train)), np.arange(len(train_labels)))
    test = np.concatenate(split.test)
    assert len(np.unique(test)) == len(test), "proportional test sets must be disjoint"
    for classes, test_idx in zip(_classes_of(split, train_labels), split.test, strict=True):
        assert set(np.unique(test_labels[test_idx]).tolist()) <= classes


def test_dirichlet_min_size_is_met() -> None:
    train, test = np.repeat(np.arange(10), 100), np.repeat(np.arange(10), 20)
    split = make_split("dirichlet", train, test, num_clients=20, seed=1, alpha=0.5, min_size=15)
    assert split.sizes().min() >= 15


def test_dirichlet_huge_alpha_approaches_iid() -> None:
    train, test = np.repeat(np.arange(10), 500), np.repeat(np.arange(10), 100)
    split = make_split("dirichlet", train, test, num_clients=10, seed=0, alpha=1e4)
    hist = split.label_histogram(train)
    proportions = hist / hist.sum(axis=1, keepdims=True)
    assert np.abs(proportions - 0.1).max() < 0.02
    assert np.abs(split.sizes() / 500 - 1).max() < 0.05


def test_dirichlet_small_alpha_is_skewed() -> None:
    train, test = np.repeat(np.arange(10), 500), np.repeat(np.arange(10), 100)
    split = make_split("dirichlet", train, test, num_clients=10, seed=0, alpha=0.05)
    assert split.summary(train)["classes_mean"] < 6


def test_every_registered_split_is_covered() -> None:
    assert {name for name, _ in SPLIT_CASES} == set(SPLITS.names())
    assert split_params("pathological") == {"classes_per_client": 2, "samples_per_class": 20,
                                            "reuse_shards": False}


def test_pathological_reusing_shards_serves_more_clients_than_shards() -> None:
    """reuse_shards: 5,000 clients from 20 shards, each holding 2 distinct whole shards drawn
    uniformly; clients with the same classes share one test array."""
    train, test = np.repeat(np.arange(4), 10), np.repeat(np.arange(4), 3)
    with pytest.raises(ConfigError, match="reuse_shards=true"):
        make_split("pathological", train, test, 15, 0, samples_per_class=2)  # 30 shards of 20
    split = make_split("pathological", train, test, 5000, 0, samples_per_class=2, reuse_shards=True)
    assert _same(split, make_split("pathological", train, test, 5000, 0, samples_per_class=2,
                                   reuse_shards=True))
    held = [tuple(sorted(s[i:i + 2])) for s in split.train for i in (0, 2)]  # 2 shards each
    assert all(len(set(s.tolist())) == 4 for s in split.train)  # two distinct shards
    shards, counts = np.unique(np.array(held), axis=0, return_counts=True)
    assert len(shards) == 20 and counts.min() > 0.8 * counts.mean()  # every shard, evenly
    assert {id(t) for t in split.test} == {id(t) for t in split.test[:200]}  # a few shared arrays
    for idx, t in zip(split.train[:50], split.test[:50]):
        assert np.array_equal(t, np.flatnonzero(np.isin(test, np.unique(train[idx]))))
    with pytest.raises(ConfigError, match="classes_per_client"):
        make_split("pathological", train, test, 10, 0, samples_per_class=2, classes_per_client=21,
                   reuse_shards=True)


BAD = [
    ("nosuch", 4, {}, "nosuch"),
    ("iid", 4, {"alpha": 1.0}, "alpha"),
    ("iid", 0, {}, "num_clients"),
    ("iid", 1001, {}, "num_clients"),
    ("dirichlet", 4, {"alpha": 0}, "alpha"),
    ("dirichlet", 4, {"alpha": -1.0}, "alpha"),
    ("dirichlet", 4, {"alpha": float("nan")}, "alpha"),
    ("dirichlet", 4, {"min_size": 300}, "min_size"),
    ("dirichlet", 4, {"test_split": "everything"}, "test_split"),
    ("pathological", 4, {"classes_per_client": 0}, "classes_per_client"),
    ("pathological", 4, {"samples_per_class": 0}, "samples_per_class"),
    ("pathological", 30, {"samples_per_class": 20}, "classes_per_client"),
    ("pathological", 4, {"classes_per_client": 2.5}, "classes_per_client"),
    ("shards", 4, {"shards_per_client": 0}, "shards_per_client"),
    ("shards", 600, {"shards_per_client": 2}, "shards_per_client"),
]


@pytest.mark.parametrize(("name", "num_clients", "params", "named"), BAD, ids=[f"{b[0]}-{b[3]}" for b in BAD])
def test_bad_settings_raise_config_error_naming_them(
    name: str, num_clients: int, params: dict, named: str
) -> None:
    train, test = np.repeat(np.arange(5), 200), np.repeat(np.arange(5), 20)
    with pytest.raises(ConfigError, match=named):
        make_split(name, train, test, num_clients, seed=0, **params)


def test_pathological_error_states_allowed_range() -> None:
    train, test = np.repeat(np.arange(10), 5000), np.repeat(np.arange(10), 1000)
    with pytest.raises(ConfigError, match=r"2500 exist.*num_clients <= 1250"):
        make_split("pathological", train, test, num_clients=1251, seed=0)


def test_summary_and_heatmap(tmp_path) -> None:
    train, test = np.repeat(np.arange(4), 50), np.repeat(np.arange(4), 10)
    split = make_split("pathological", train, test, num_clients=8, seed=0, samples_per_class=10)
    summary = split.summary(train)
    assert summary["num_clients"] == 8 and summary["size_min"] == summary["size_max"] == 20
    assert 1 <= summary["classes_min"] <= summary["classes_max"] <= 2
    path = tmp_path / "split.png"
    split.save_heatmap(train, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
