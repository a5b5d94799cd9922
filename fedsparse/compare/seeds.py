"""Comparisons over several seeds: accuracy at upload caps as the mean over seeds with the range.

Each input folder holds one seed's runs (a comparison folder or its archive, see
`fedsparse.compare.archive`). Per method and cap the accuracy of one seed is the mean of its last
`SMOOTH` client-test evaluations within the cap (as in `comparison.md`); the table gives the mean
over the seeds that ran the method and the min-max range. The method-vs-reference deltas are taken
per seed first (same seed, same split), then averaged.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from fedsparse.compare.archive import method_runs, read_rows
from fedsparse.compare.report import GB, SMOOTH, accuracy_at, auto_caps
from fedsparse.errors import DataError
from fedsparse.metrics.run_folder import CONFIG_FILE

Rows = list[dict[str, Any]]


def load_seeds(folders: list[Path]) -> dict[str, dict[int, Rows]]:
    """method -> seed -> metric rows, from one folder per seed."""
    out: dict[str, dict[int, Rows]] = {}
    for folder in folders:
        for method, run in method_runs(folder).items():
            seed = int(OmegaConf.load(run / CONFIG_FILE)["seed"])
            if seed in out.get(method, {}):
                raise DataError(f"{run}: a second run of {method} with seed {seed} (one folder per seed)")
            out.setdefault(method, {})[seed] = read_rows(run)
    return out


def _at(rows: Rows, cap: float, kind: str) -> float | None:
    hit = accuracy_at(rows, cap, kind, SMOOTH)
    return None if hit is None or hit[2] else hit[0]  # a run that ended below the cap: no value


def _end(rows: Rows, kind: str) -> tuple[float, float]:
    """(mean of the run's last `SMOOTH` evaluations, its total upload in GB)."""
    hit = accuracy_at(rows, math.inf, kind, SMOOTH)
    return (hit[0] if hit else math.nan), max(r["cumulative_upload_bytes"] for r in rows) / GB


def _stat(values: list[float], signed: bool = False) -> str:
    """Mean over seeds in points, with the min-max range when there are several: `35.0 (30.0-40.0,
    2 seeds)`, or, `signed`, a difference: `+22.5 (+17.5..+27.5)`."""
    if not values:
        return "-"
    fmt, sep = ("+.1f", "..") if signed else (".1f", "-")
    mean = f"{100 * statistics.fmean(values):{fmt}}"
    if len(values) == 1:
        return mean if signed else f"{mean} (1 seed)"
    span = f"{100 * min(values):{fmt}}{sep}{100 * max(values):{fmt}}"
    return f"{mean} ({span})" if signed else f"{mean} ({span}, {len(values)} seeds)"


def seeds_report(runs: dict[str, dict[int, Rows]], caps_gb: list[float] | None = None,
                 reference: str = "fedavgm", kind: str = "client") -> str:
    """The markdown tables: accuracy at caps (mean, range over seeds) and deltas to `reference`."""
    totals = {m: min(max(r["cumulative_upload_bytes"] for r in rows) for rows in by_seed.values()) / GB
              for m, by_seed in runs.items()}
    sparse = [m for m, by_seed in runs.items()
              if any(r.get("density", 1.0) < 1.0 for rows in by_seed.values() for r in rows)]
    caps = sorted(caps_gb) if caps_gb else auto_caps(totals, sparse)
    lines = [f"{kind.capitalize()}-test accuracy (%) at cumulative upload caps: mean of the last "
             f"{SMOOTH} evaluations within the cap, averaged over seeds (min-max over seeds). "
             "`-`: no run reached the cap. End of run: the mean of its last "
             f"{SMOOTH} evaluations, at its upload (mean over seeds).", "",
             "| method | seeds | " + " | ".join(f"{c:g} GB" for c in caps) + " | end of run |",
             "|---|---|" + "---|" * (len(caps) + 1)]
    for m, by_seed in runs.items():
        cells = [_stat([v for rows in by_seed.values() if (v := _at(rows, c, kind)) is not None])
                 for c in caps]
        ends = [_end(rows, kind) for rows in by_seed.values()]
        cells.append(f"{_stat([a for a, _ in ends])} at {statistics.fmean(g for _, g in ends):.2f} GB")
        lines.append(f"| {m} | {', '.join(map(str, sorted(by_seed)))} | " + " | ".join(cells) + " |")
    if reference in runs:
        lines += ["", f"Points of {kind}-test accuracy over `{reference}` of the same seed, at the "
                  f"same cap and with `{reference}` at twice the cap (mean, min-max over seeds):", "",
                  "| method | " + " | ".join(f"{c:g} GB: same / 2x" for c in caps) + " |",
                  "|---|" + "---|" * len(caps)]
        ref = runs[reference]
        for m in sparse:
            cells = []
            for c in caps:
                same, twice = [], []
                for seed, rows in runs[m].items():
                    mine = _at(rows, c, kind)
                    if mine is None or seed not in ref:
                        continue
                    if (r1 := _at(ref[seed], c, kind)) is not None:
                        same.append(mine - r1)
                    if (r2 := _at(ref[seed], 2 * c, kind)) is not None:
                        twice.append(mine - r2)
                cells.append(f"{_stat(same, signed=True)} / {_stat(twice, signed=True)}")
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"

