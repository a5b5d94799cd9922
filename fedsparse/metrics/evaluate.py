"""`evaluate`: central test accuracy/loss and per-client accuracy from one pass over the test set."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from fedsparse.errors import ConfigError, DataError


def evaluate(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    client_test: list[torch.Tensor] | ClientTestSets | None,
    batch_size: int = 1000,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> dict[str, float]:
    """Evaluate `model` (already on x's device) on (x, y); accuracies are fractions in [0, 1].
    `transform`, when given, maps each batch of `x` to the model's input (e.g. uint8 images to
    normalized floats, so the whole test set need not be held as floats).

    Returns `central_accuracy`, `central_loss` (mean cross-entropy) and, when `client_test`
    (index tensors into the test set, may overlap; or a `ClientTestSets` built once from them,
    which saves flattening them at every evaluation) is given, `client_accuracy` (mean over
    clients), `client_accuracy_std` (population std) and `client_accuracy_min`. Clients with
    no test indices are left out of the client statistics. The model's train/eval mode is restored.
    """
    n = len(x)
    if n == 0 or len(y) != n:
        raise DataError(
            f"test set must be non-empty with one label per input; got {n} inputs, {len(y)} labels"
        )
    if batch_size < 1:
        raise ConfigError(f"evaluation batch_size must be >= 1, got {batch_size}")
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            correct = torch.empty(n, dtype=torch.bool, device=x.device)
            loss_sum = torch.zeros((), dtype=torch.float64, device=x.device)
            for start in range(0, n, batch_size):
                xb, yb = x[start : start + batch_size], y[start : start + batch_size].to(x.device)
                logits = model(transform(xb) if transform is not None else xb)
                correct[start : start + len(xb)] = logits.argmax(dim=1) == yb
                loss_sum += F.cross_entropy(logits.float(), yb, reduction="sum").double()
            out = {
                "central_accuracy": correct.double().mean().item(),
                "central_loss": (loss_sum / n).item(),
            }
            if client_test is not None:
                if not isinstance(client_test, ClientTestSets):
                    client_test = ClientTestSets(client_test, n, correct.device)
                out |= client_test.stats(correct)
    finally:
        model.train(was_training)
    return out


class ClientTestSets:
    """Clients' test index sets flattened once: one gather + segment-sum gives every accuracy.

    Clients holding the same index set (in the pathological split, every client with the same
    classes) share one segment: 10,000 such clients cost what their few distinct sets cost."""

    def __init__(self, client_test: list[torch.Tensor], n: int, device: torch.device) -> None:
        sizes = torch.tensor([len(ix) for ix in client_test], dtype=torch.long)
        if int(sizes.sum()) == 0:
            raise DataError(f"all {len(client_test)} clients have empty test index sets")
        first: dict[bytes, int] = {}
        same_memory: dict[tuple[int, int], int] = {}  # clients sharing one array (`by_classes`)
        distinct: list[torch.Tensor] = []
        owner = []
        for ix in client_test:
            flat = ix.reshape(-1).to("cpu", torch.long)  # `evaluate` may pass them on its device
            # keyed by address only when `flat` is a view of `ix` (alive until the loop ends), not
            # a copy whose address a later copy may reuse
            where = (flat.data_ptr(), flat.numel()) if flat.data_ptr() == ix.data_ptr() else None
            slot = same_memory.get(where) if where is not None else None
            if slot is None:
                slot = first.setdefault(flat.numpy().tobytes(), len(distinct))
                if slot == len(distinct):
                    distinct.append(flat)
                if where is not None:
                    same_memory[where] = slot
            owner.append(slot)
        idx = torch.cat(distinct)
        lo, hi = int(idx.min()), int(idx.max())
        if lo < 0 or hi >= n:
            raise DataError(f"client test indices must lie in [0, {n}); got [{lo}, {hi}]")
        self.n, self.count = n, len(distinct)
        self.idx = idx.to(device, torch.int32)
        distinct_sizes = torch.tensor([len(d) for d in distinct], dtype=torch.long)
        self.segment = torch.repeat_interleave(torch.arange(self.count, dtype=torch.int32),
                                               distinct_sizes).to(device)
        present = sizes > 0
        self.owner = torch.tensor(owner, dtype=torch.long)[present].to(device)
        self.sizes = distinct_sizes.to(device, torch.float64)

    def stats(self, correct: torch.Tensor) -> dict[str, float]:
        """Mean/std/min over clients (those with test indices) of their accuracy."""
        if len(correct) != self.n:
            raise DataError(f"client test sets index {self.n} test images, got {len(correct)}")
        hits = torch.bincount(self.segment, weights=correct[self.idx].double(), minlength=self.count)
        acc = (hits / self.sizes)[self.owner]
        return {
            "client_accuracy": acc.mean().item(),
            "client_accuracy_std": acc.std(correction=0).item(),
            "client_accuracy_min": acc.min().item(),
        }
