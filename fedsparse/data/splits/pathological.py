"""`pathological`: the LotteryFL / FedDST split, a few single-label shards per client."""

from __future__ import annotations

import numpy as np

from fedsparse.data.splits import checks
from fedsparse.data.splits.client_split import ClientSplit
from fedsparse.data.splits.client_test_sets import by_classes
from fedsparse.data.splits.registry import SPLITS


@SPLITS.register("pathological")
def pathological(
    train_labels: np.ndarray,
    test_labels: np.ndarray,
    num_clients: int,
    rng: np.random.Generator,
    *,
    classes_per_client: int = 2,
    samples_per_class: int = 20,
    reuse_shards: bool = False,
) -> ClientSplit:
    """Each class's (shuffled) train images are cut into shards of `samples_per_class` (a class's
    remainder is unused); each client draws `classes_per_client` shards without replacement, so it
    holds exactly classes_per_client * samples_per_class images of at most classes_per_client
    classes (two shards may share a label). Test: every test image of the client's classes.
    FedDST/LotteryFL setting: 400 clients, defaults (2 shards of 20).

    Shards are drawn without replacement over all clients (no two clients share an image), unless
    `reuse_shards`: then each client's shards are distinct but drawn independently of the other
    clients' (a uniformly random subset each), for more clients than the data has shards for."""
    train_labels, test_labels, num_clients = checks.common(
        "pathological", train_labels, test_labels, num_clients, shared=bool(reuse_shards)
    )
    per_client = checks.positive_int("pathological", "classes_per_client", classes_per_client)
    shard_size = checks.positive_int("pathological", "samples_per_class", samples_per_class)
    class_sizes = np.bincount(train_labels)
    available = int((class_sizes // shard_size).sum())
    if reuse_shards:
        checks.at_most("pathological", f"classes_per_client (shards of samples_per_class={shard_size})",
                       per_client, available, f"classes_per_client <= {available}")
    else:
        checks.at_most(
            "pathological",
            f"num_clients * classes_per_client (shards of samples_per_class={shard_size} needed)",
            num_clients * per_client,
            available,
            f"num_clients * classes_per_client <= {available} (whole shards within each class), "
            f"e.g. num_clients <= {available // per_client} here, or reuse_shards=true",
        )
    per_class = []
    for k, size in enumerate(class_sizes):
        members = rng.permutation(np.flatnonzero(train_labels == k))
        per_class.append(members[: size // shard_size * shard_size].reshape(-1, shard_size))
    shards = np.concatenate(per_class)
    if reuse_shards:
        picks = _subsets(rng, len(shards), num_clients, per_client)
    else:
        picks = rng.choice(len(shards), size=(num_clients, per_client), replace=False)
    train = [shards[p].ravel() for p in picks]
    return ClientSplit(
        train=train,
        test=by_classes(train, train_labels, test_labels),
        num_classes=checks.num_classes(train_labels, test_labels),
    )


def _subsets(rng: np.random.Generator, n: int, rows: int, k: int) -> np.ndarray:
    """`rows` independent uniformly random k-subsets of range(n), one per row (Floyd's algorithm,
    vectorised over rows)."""
    picks = np.empty((rows, k), dtype=np.int64)
    for j in range(k):
        top = n - k + j
        drawn = rng.integers(0, top + 1, size=rows)
        taken = (picks[:, :j] == drawn[:, None]).any(axis=1)
        picks[:, j] = np.where(taken, top, drawn)
    return picks
