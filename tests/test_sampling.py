"""Seeded client sampling: a pure function of (seed, round)."""

from fedsparse.fl.sampling import sample_clients


def test_sampling_is_seeded_distinct_and_round_dependent() -> None:
    pop = list(range(400))
    a = sample_clients(3, 5, pop, 20)
    assert a == sample_clients(3, 5, pop, 20)
    assert len(set(a)) == 20 and a == sorted(a) and set(a) <= set(pop)
    assert a != sample_clients(3, 6, pop, 20) and a != sample_clients(4, 5, pop, 20)
    rounds = [tuple(sample_clients(0, r, pop, 20)) for r in range(1, 50)]
    assert len(set(rounds)) == len(rounds)
