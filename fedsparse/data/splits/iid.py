"""`iid`: shuffled, equal shares of the train set."""

from __future__ import annotations

import numpy as np

from fedsparse.data.splits import checks
from fedsparse.data.splits.client_split import ClientSplit
from fedsparse.data.splits.client_test_sets import iid_shares
from fedsparse.data.splits.registry import SPLITS


@SPLITS.register("iid")
def iid(
    train_labels: np.ndarray, test_labels: np.ndarray, num_clients: int, rng: np.random.Generator
) -> ClientSplit:
    """Random equal shares of train (sizes differ by at most one); test: equal random shares of
    the test set (disjoint; empty for some clients if num_clients > test images)."""
    train_labels, test_labels, num_clients = checks.common("iid", train_labels, test_labels, num_clients)
    return ClientSplit(
        train=np.array_split(rng.permutation(len(train_labels)), num_clients),
        test=iid_shares(len(test_labels), num_clients, rng),
        num_classes=checks.num_classes(train_labels, test_labels),
    )
