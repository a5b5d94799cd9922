"""`SPLITS`: name -> split function.

Each is `(train_labels, test_labels, num_clients, rng, **params) -> ClientSplit`, its parameters
keyword-only with defaults, checked at the top before any work.
"""

from __future__ import annotations

from collections.abc import Callable

from fedsparse.data.splits.client_split import ClientSplit
from fedsparse.registry import Registry

SplitFn = Callable[..., ClientSplit]

SPLITS: Registry[SplitFn] = Registry("split")
