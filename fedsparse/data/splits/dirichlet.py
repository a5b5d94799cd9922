"""`dirichlet`: per-class Dirichlet(alpha) proportions over clients (flwr-datasets' DirichletPartitioner)."""

from __future__ import annotations

import warnings

import numpy as np

from fedsparse.data.splits import checks
from fedsparse.data.splits.client_split import ClientSplit
from fedsparse.data.splits.client_test_sets import by_classes, iid_shares, proportional
from fedsparse.data.splits.registry import SPLITS
from fedsparse.errors import ConfigError

TEST_SPLITS = ("proportional", "classes", "iid")


@SPLITS.register("dirichlet")
def dirichlet(
    train_labels: np.ndarray,
    test_labels: np.ndarray,
    num_clients: int,
    rng: np.random.Generator,
    *,
    alpha: float = 0.1,
    min_size: int = 10,
    test_split: str = "proportional",
) -> ClientSplit:
    """For each class, draw client proportions from Dirichlet(alpha) and cut that class's train
    images accordingly; redraw everything (up to 10 tries) while a client has < `min_size` images.
    Small alpha: few classes per client; large alpha: close to iid.

    test_split (default "proportional", FedDST's CIFAR-100 setting, alpha 0.1 / 400 clients):
    "proportional" cuts each class's test images in the proportions the clients hold its train
    images (disjoint; a client may get few or no test images); "classes" gives a client every
    test image of every class it holds (overlapping); "iid" gives equal random shares.
    """
    train_labels, test_labels, num_clients = checks.common(
        "dirichlet", train_labels, test_labels, num_clients
    )
    alpha = checks.positive_float("dirichlet", "alpha", alpha)
    min_size = checks.positive_int("dirichlet", "min_size", min_size, minimum=0)
    checks.at_most(
        "dirichlet",
        "num_clients * min_size (train images needed)",
        num_clients * min_size,
        len(train_labels),
        f"min_size <= {len(train_labels) // num_clients} for num_clients={num_clients}",
    )
    test_split = checks.choice("dirichlet", "test_split", test_split, TEST_SPLITS)
    train = _partition(train_labels, num_clients, alpha, min_size, seed=int(rng.integers(2**63)))
    if test_split == "proportional":
        test = proportional(train, train_labels, test_labels, rng)
    elif test_split == "classes":
        test = by_classes(train, train_labels, test_labels)
    else:
        test = iid_shares(len(test_labels), num_clients, rng)
    return ClientSplit(train=train, test=test, num_classes=checks.num_classes(train_labels, test_labels))


def _partition(
    labels: np.ndarray, num_clients: int, alpha: float, min_size: int, seed: int
) -> list[np.ndarray]:
    from datasets import Dataset
    from flwr_datasets.partitioner import DirichletPartitioner

    partitioner = DirichletPartitioner(
        num_partitions=num_clients, partition_by="label", alpha=alpha, min_partition_size=min_size, seed=seed
    )
    # arrow format: columns come back as pyarrow arrays, not row by row (much faster)
    columns = {"label": labels, "index": np.arange(len(labels))}
    partitioner.dataset = Dataset.from_dict(columns).with_format("arrow")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # one warning per redraw; failure is reported below
            parts = [partitioner.load_partition(i)["index"] for i in range(num_clients)]
            return [part.to_numpy().astype(np.int64) for part in parts]
    except ValueError as err:
        raise ConfigError(
            f"split 'dirichlet': no draw in 10 tries gave every one of num_clients={num_clients} clients "
            f"min_size={min_size} train images with alpha={alpha}; "
            f"lower min_size or num_clients, or raise alpha ({err})"
        ) from err
