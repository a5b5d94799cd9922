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
) -> ClientSplit:
    """Each class's (shuffled) train images are cut into shards of `samples_per_class` (a class's
    remainder is unused); each client draws `classes_per_client` shards without replacement, so it
    holds exactly classes_per_client * samples_per_class images of at most classes_per_client
    classes (two shards may share a label). Test: every test image of the client's classes.
    FedDST/LotteryFL setting: 400 clients, defaults (2 shards of 20)."""
    train_labels, test_labels, num_clients = checks.common(
        "pathological", train_labels, test_labels, num_clients
    )
    per_client = checks.positive_int("pathological", "classes_per_client", classes_per_client)
    shard_size = checks.positive_int("pathological", "samples_per_class", samples_per_class)
    class_sizes = np.bincount(train_labels)
    available = int((class_sizes // shard_size).sum())
    checks.at_most(
        "pathological",
        f"num_clients * classes_per_client (shards of samples_per_class={shard_size} needed)",
        num_clients * per_client,
        available,
        f"num_clients * classes_per_client <= {available} (whole shards within each class), "
        f"e.g. num_clients <= {available // per_client} here",
    )
    per_class = []
    for k, size in enumerate(class_sizes):
        members = rng.permutation(np.flatnonzero(train_labels == k))
        per_class.append(members[: size // shard_size * shard_size].reshape(-1, shard_size))
    shards = np.concatenate(per_class)
    picks = rng.choice(len(shards), size=(num_clients, per_client), replace=False)
    train = [shards[p].ravel() for p in picks]
    return ClientSplit(
        train=train,
        test=by_classes(train, train_labels, test_labels),
        num_classes=checks.num_classes(train_labels, test_labels),
    )
