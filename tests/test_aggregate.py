"""FedDST's server math: per-coordinate sparse averaging, union, re-prune to the exact budget."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fedsparse.sparse.aggregate import sparse_average
from fedsparse.sparse.mask import Mask
from fedsparse.sparse.ops import prune_lowest


def test_three_client_hand_example() -> None:
    # coordinate:        0    1    2    3
    w1 = torch.tensor([1.0, 2.0, 0.0, 0.0]); m1 = torch.tensor([1, 1, 0, 0], dtype=torch.bool)
    w2 = torch.tensor([3.0, 0.0, 5.0, 0.0]); m2 = torch.tensor([1, 0, 1, 0], dtype=torch.bool)
    w3 = torch.tensor([5.0, 4.0, 0.0, 0.0]); m3 = torch.tensor([1, 1, 0, 0], dtype=torch.bool)
    b = [torch.tensor([1.0]), torch.tensor([2.0]), torch.tensor([4.0])]
    states = [{"w": w, "b": bb} for w, bb in zip((w1, w2, w3), b)]
    masks = [Mask({"w": m}) for m in (m1, m2, m3)]
    avg, union = sparse_average(states, masks, [1.0, 2.0, 1.0], ["w"])
    # coord 0: (1*1 + 3*2 + 5*1) / 4 = 3; coord 1: (2*1 + 4*1) / 2 = 3 (client 2 does not dilute);
    # coord 2: only client 2 -> 5; coord 3: nobody -> 0. Dense bias: (1 + 4 + 4) / 4 = 2.25.
    assert torch.equal(avg["w"], torch.tensor([3.0, 3.0, 5.0, 0.0]))
    assert torch.equal(union["w"], torch.tensor([1, 1, 1, 0], dtype=torch.bool))
    assert torch.allclose(avg["b"], torch.tensor([2.25]))


@settings(max_examples=25, deadline=None)
@given(st.integers(2, 6), st.integers(1, 40), st.integers(0, 2**31 - 1))
def test_union_then_reprune_keeps_exact_budget(clients: int, budget: int, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    n = 64
    masks, states = [], []
    for _ in range(clients):
        keep = torch.zeros(n, dtype=torch.bool)
        keep[torch.randperm(n, generator=g)[:budget]] = True
        masks.append(Mask({"w": keep}))
        states.append({"w": torch.randn(n, generator=g) * keep})
    avg, union = sparse_average(states, masks, [1.0] * clients, ["w"])
    excess = {"w": max(0, int(union["w"].sum()) - budget)}
    new = prune_lowest(union, {"w": avg["w"].abs()}, excess)
    assert int(new["w"].sum()) == budget
    assert not (new["w"] & ~union["w"]).any()  # nothing outside the union
    kept, dropped = avg["w"][new["w"]].abs(), avg["w"][union["w"] & ~new["w"]].abs()
    if len(dropped):
        assert kept.min() >= dropped.max()  # the largest magnitudes survive
