"""Figures of a multi-seed comparison: accuracy against cumulative upload (mean over seeds, with
the min-max range shaded), and a run's trajectory against the FedDST reference bands."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from fedsparse.compare.feddst_reference import REFERENCE_BANDS

Rows = list[dict[str, Any]]
GB = 1e9


def _series(rows: Rows, x: str, y: str) -> tuple[np.ndarray, np.ndarray]:
    pts = [(r[x], r[y]) for r in rows if r.get(y) is not None and r.get(x) is not None]
    arr = np.asarray(pts, dtype=float).reshape(-1, 2)
    return arr[:, 0], arr[:, 1]


def seeds_plot(runs: dict[str, dict[int, Rows]], path: Path, title: str, kind: str = "client") -> Path:
    """Per method: the mean over seeds of `kind`-test accuracy vs cumulative upload (GB), on the
    upload grid of its first seed, with the seeds' min-max shaded; up to the shortest seed's end."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8.4, 4.8))
    for method, by_seed in runs.items():
        curves = [_series(rows, "cumulative_upload_bytes", f"{kind}_accuracy") for rows in by_seed.values()]
        curves = [c for c in curves if len(c[0])]
        if not curves:
            continue
        end = min(c[0][-1] for c in curves)
        grid = curves[0][0][curves[0][0] <= end]
        ys = np.stack([np.interp(grid, cx, cy) for cx, cy in curves])
        label = f"{method} ({len(curves)} seed{'s' if len(curves) > 1 else ''})"
        line, = ax.plot(grid / GB, ys.mean(0), label=label)
        if len(curves) > 1:
            ax.fill_between(grid / GB, ys.min(0), ys.max(0), color=line.get_color(), alpha=0.2)
    ax.set(xlabel="cumulative upload (GB)", ylabel=f"{kind}-test accuracy", title=title)
    ax.grid(alpha=0.3)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def bands_plot(runs: dict[str, Rows], path: Path, title: str) -> Path:
    """Client-test accuracy vs round of each run, over the reference code's measured ranges."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8.4, 4.8))
    for i, band in enumerate(REFERENCE_BANDS):
        ax.fill_between([band.first, band.last], band.low, band.high, color="grey", alpha=0.25,
                        label="FedDST reference code (measured range)" if i == 0 else None)
    for name, rows in runs.items():
        x, y = _series(rows, "round", "client_accuracy")
        ax.plot(x, y, label=name)
    ax.set(xlabel="round", ylabel="client-test accuracy", title=title)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
