"""`python -m simulations.compare_seeds`: one comparison per seed -> mean and range over seeds.

    python -m simulations.compare_seeds folders=[runs/compare-feddst_cifar10-s0,runs/compare-feddst_cifar10-s1] \\
        out=seeds.md

Each folder is one seed's comparison folder or its archive (`simulations.compare archive=...`).
Writes the markdown tables to `out`, and beside it `<out stem>_client_accuracy_vs_upload.png`
and, for the methods in `bands`, `<out stem>_reference_bands.png` with the FedDST reference code's
measured ranges.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fedsparse import usage
from fedsparse.bench.args import load_dataclass
from fedsparse.compare.feddst_reference import band_means
from fedsparse.compare.seeds import load_seeds, seeds_report
from fedsparse.compare.seeds_plots import bands_plot, seeds_plot
from fedsparse.errors import ConfigError, DataError


@dataclass
class SeedsConfig:
    folders: list[str] = field(default_factory=list)
    """one comparison folder (or its archive) per seed"""
    out: str = "seeds.md"
    """markdown file written; the plots go beside it"""
    caps_gb: list[float] | None = None
    """cumulative upload caps (GB = 1e9 bytes); null = chosen from the runs"""
    reference: str = "fedavgm"
    """method the sparse ones are compared with, seed by seed"""
    bands: list[str] = field(default_factory=lambda: ["feddst_faithful"])
    """methods checked against the FedDST reference code's measured accuracy bands"""


def _folders(v: Any, _: SeedsConfig) -> str | None:
    missing = [f for f in v if not Path(f).is_dir()]
    if not v or missing:
        return f"a non-empty list of existing folders (not found: {', '.join(missing)})" if missing \
            else "a non-empty list of existing folders"
    return None


CHECKS = {
    "folders": _folders,
    "caps_gb": lambda v, _: None if v is None or (len(v) > 0 and all(x > 0 for x in v))
    else "null or a non-empty list of positive numbers (GB)",
}


def bands_section(runs: dict[str, dict[int, list]], methods: list[str]) -> list[str]:
    """The reference-band check of `methods`, one line per seed and band."""
    lines = ["", "Client-test accuracy against the FedDST reference code's bands (mean of the "
             "evaluations in the rounds; reference range measured on the shared CIFAR-10; bar = the "
             "least mean a faithful run should reach):", "",
             "| method | seed | rounds | mean | reference range | bar | met |", "|---|---|---|---|---|---|---|"]
    for m in (m for m in methods if m in runs):
        for seed, rows in sorted(runs[m].items()):
            for band, mean in band_means(rows):
                met = "-" if mean is None else ("yes" if mean >= band.bar else "no")
                shown = "-" if mean is None else f"{mean:.3f}"
                lines.append(f"| {m} | {seed} | {band.first}-{band.last} | {shown} | "
                             f"{band.low:.2f}-{band.high:.2f} | {band.bar:.2f} | {met} |")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    usage.exit_if_help(args, "simulations.compare_seeds", "folders=[DIR,...] [out=FILE] [key=value ...]",
                       lambda: [usage.Section("Settings (key=value)", SeedsConfig(), CHECKS)])
    try:
        cfg = load_dataclass(SeedsConfig, CHECKS, args)
        runs = load_seeds([Path(f) for f in cfg.folders])
        out = Path(cfg.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        lines = [seeds_report(runs, cfg.caps_gb, cfg.reference)]
        if any(m in runs for m in cfg.bands):
            lines += bands_section(runs, cfg.bands)
            bands_plot({f"{m} s{s}": rows for m in cfg.bands if m in runs for s, rows in runs[m].items()},
                       out.with_name(f"{out.stem}_reference_bands.png"), "Faithful FedDST vs the reference code")
        out.write_text("\n".join(lines).rstrip("\n") + "\n")
        seeds_plot(runs, out.with_name(f"{out.stem}_client_accuracy_vs_upload.png"),
                   f"Client-test accuracy vs upload ({', '.join(f.rstrip('/').split('/')[-1] for f in cfg.folders)})")
    except (ConfigError, DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0
