import math

import pytest

from fedsparse.errors import ConfigError
from fedsparse.sparse.schedules import DROP_SCHEDULES, agp_density


def test_registry_names():
    assert DROP_SCHEDULES.names() == ["constant", "cosine", "linear"]


@pytest.mark.parametrize(
    "name,t,expected",
    [
        ("cosine", 0, 0.01),
        ("cosine", 50, 0.005),
        ("cosine", 25, 0.01 / 2 * (1 + math.cos(math.pi / 4))),
        ("cosine", 100, 0.0),
        ("cosine", 150, 0.0),
        ("linear", 0, 0.01),
        ("linear", 25, 0.0075),
        ("linear", 100, 0.0),
        ("linear", 130, 0.0),
        ("constant", 0, 0.01),
        ("constant", 99, 0.01),
        ("constant", 100, 0.0),
    ],
)
def test_drop_schedules(name, t, expected):
    assert DROP_SCHEDULES.get(name)(t, 100, 0.01) == pytest.approx(expected, abs=1e-15)


def test_drop_schedule_rejects_bad_end():
    with pytest.raises(ConfigError):
        DROP_SCHEDULES.get("cosine")(1, 0, 0.1)


def test_agp_density_formula():
    # s_i = 0, s_f = 0.9; halfway: s = 0.9 + (0 - 0.9) * 0.5^3 = 0.7875 -> density 0.2125
    assert agp_density(0, 10, 110, 0.1) == pytest.approx(1.0)
    assert agp_density(10, 10, 110, 0.1) == pytest.approx(1.0)
    assert agp_density(60, 10, 110, 0.1) == pytest.approx(0.2125)
    assert agp_density(35, 10, 110, 0.1) == pytest.approx(1 - (0.9 - 0.9 * 0.75**3))
    assert agp_density(110, 10, 110, 0.1) == pytest.approx(0.1)
    assert agp_density(500, 10, 110, 0.1) == pytest.approx(0.1)
    # from initial density 0.5: s_i = 0.5, s_f = 0.8, halfway 0.8 - 0.3/8 = 0.7625
    assert agp_density(50, 0, 100, 0.2, initial_density=0.5) == pytest.approx(0.2375)


def test_agp_density_monotone():
    values = [agp_density(t, 0, 20, 0.05) for t in range(25)]
    assert all(a >= b for a, b in zip(values, values[1:]))


def test_agp_density_validation():
    with pytest.raises(ConfigError):
        agp_density(0, 10, 10, 0.1)
    with pytest.raises(ConfigError):
        agp_density(0, 0, 10, 0.6, initial_density=0.5)
