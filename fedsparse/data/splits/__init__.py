"""Federated splits of a labelled dataset over clients; `make_split` is the entry point."""

from fedsparse.data.splits import dirichlet, iid, pathological, shards  # noqa: F401 - register the splits
from fedsparse.data.splits.client_split import ClientSplit
from fedsparse.data.splits.make import make_split, split_params
from fedsparse.data.splits.registry import SPLITS

__all__ = ["SPLITS", "ClientSplit", "make_split", "split_params"]
