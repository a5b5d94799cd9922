"""`shards`: McMahan et al.'s FedAvg split, equal shards of the label-sorted train set."""

from __future__ import annotations

import numpy as np

from fedsparse.data.splits import checks
from fedsparse.data.splits.client_split import ClientSplit
from fedsparse.data.splits.client_test_sets import by_classes
from fedsparse.data.splits.registry import SPLITS


@SPLITS.register("shards")
def shards(
    train_labels: np.ndarray,
    test_labels: np.ndarray,
    num_clients: int,
    rng: np.random.Generator,
    *,
    shards_per_client: int = 2,
) -> ClientSplit:
    """Sort train by label (random order within a label), cut it into num_clients *
    shards_per_client equal shards (the remainder is unused; a shard may straddle two labels),
    give each client `shards_per_client` random shards. Test: every test image of the classes
    the client holds."""
    train_labels, test_labels, num_clients = checks.common("shards", train_labels, test_labels, num_clients)
    per_client = checks.positive_int("shards", "shards_per_client", shards_per_client)
    num_shards = num_clients * per_client
    checks.at_most(
        "shards",
        "num_clients * shards_per_client (shards needed, one train image each at least)",
        num_shards,
        len(train_labels),
        f"num_clients * shards_per_client <= {len(train_labels)}",
    )
    shuffled = rng.permutation(len(train_labels))
    ordered = shuffled[np.argsort(train_labels[shuffled], kind="stable")]
    shard_size = len(ordered) // num_shards
    cut = ordered[: num_shards * shard_size].reshape(num_shards, shard_size)
    picks = rng.permutation(num_shards).reshape(num_clients, per_client)
    train = [cut[p].ravel() for p in picks]
    return ClientSplit(
        train=train,
        test=by_classes(train, train_labels, test_labels),
        num_classes=checks.num_classes(train_labels, test_labels),
    )
