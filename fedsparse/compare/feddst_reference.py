"""What the FedDST reference code (bibikar/feddst `dst.py`) reaches on the paper's CIFAR-10 setting
(pathological 400 x 2 x 20 split, S = 0.8, alpha = 0.01, R_adj = 15, 10 local epochs), measured on
the shared CIFAR-10 with the reference code and a re-run of its loop with two seeds
(../shared/notes/feddst.md): the bands a faithful reproduction should land in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Band:
    """Rounds `first..last` (inclusive): the reference's client-test accuracy range `low..high`,
    and `bar`, the least mean accuracy of a faithful run's evaluations in those rounds."""

    first: int
    last: int
    low: float
    high: float
    bar: float


REFERENCE_BANDS = (Band(90, 110, 0.17, 0.21, 0.15), Band(190, 210, 0.21, 0.27, 0.19),
                   Band(250, 400, 0.25, 0.36, 0.23))


def band_means(rows: list[dict[str, Any]], kind: str = "client") -> list[tuple[Band, float | None]]:
    """Each band with the mean `kind`-test accuracy of the run's evaluations in its rounds
    (None when the run has no evaluation there)."""
    key = f"{kind}_accuracy"
    out: list[tuple[Band, float | None]] = []
    for band in REFERENCE_BANDS:
        values = [r[key] for r in rows if band.first <= r["round"] <= band.last and r.get(key) is not None]
        out.append((band, sum(values) / len(values) if values else None))
    return out
