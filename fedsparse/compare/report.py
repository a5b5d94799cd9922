"""A comparison's report: accuracy at cumulative upload caps, the FedDST-vs-FedAvgM check, plots.

Accuracy "at cap C" is the last evaluation whose cumulative upload is <= C; a run that ended below
C (it never needed that much) keeps its final accuracy there, marked `*`. On non-iid splits the
accuracy of one evaluation swings by several points from one evaluation to the next, so the
comparison against the reference method uses the mean of the last `SMOOTH` evaluations within
the cap (dense methods evaluate at the sparse runs' upload spacing, so the window is about the
same number of bytes for every method).
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

from fedsparse.compare.archive import read_rows
from fedsparse.metrics.plots import compare_plot
from fedsparse.metrics.run_folder import SUMMARY_FILE

GB = 1e9
SMOOTH = 3
KINDS = ("client", "central")
Rows = list[dict[str, Any]]


def accuracy_at(rows: Rows, cap_gb: float, kind: str, last: int = 1
                ) -> tuple[float, int, bool] | None:
    """(accuracy, round, ended below the cap) of the last evaluation within `cap_gb` (the mean of
    the last `last` evaluations, fewer if there are fewer), or None."""
    key = f"{kind}_accuracy"
    within = [r for r in rows if r.get(key) is not None
              and r["cumulative_upload_bytes"] <= cap_gb * GB]
    if not within:
        return None
    total = max(r["cumulative_upload_bytes"] for r in rows)
    window = within[-last:]
    return sum(r[key] for r in window) / len(window), within[-1]["round"], total < cap_gb * GB


def auto_caps(totals: dict[str, float], sparse: list[str]) -> list[float]:
    """M/4, M/2, M and 2M, M = the smallest total upload among the sparse runs (else all runs),
    rounded to two significant digits."""
    pool = [totals[m] for m in sparse] or list(totals.values())
    m = min(pool)
    return [_round2(m * f) for f in (0.25, 0.5, 1.0, 2.0)]


def _round2(x: float) -> float:
    digits = 1 - math.floor(math.log10(x))
    return round(x, digits)


def _cell(hit: tuple[float, int, bool] | None) -> str:
    if hit is None:
        return "-"
    acc, rnd, below = hit
    return f"{100 * acc:.1f}{'*' if below else ''} (r{rnd})"


def write_report(folder: Path, runs: dict[str, Path], sparse: list[str],
                 caps_gb: list[float] | None, reference: str = "fedavgm") -> Path:
    """Write caps.csv, comparison.md, comparison.json and the plots into `folder`."""
    rows = {m: read_rows(p) for m, p in runs.items()}
    summaries = {m: json.loads((p / SUMMARY_FILE).read_text()) for m, p in runs.items()}
    totals = {m: s["total_upload_bytes"] / GB for m, s in summaries.items()}
    caps = sorted(caps_gb) if caps_gb else auto_caps(totals, [m for m in sparse if m in runs])

    with open(folder / "caps.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["method", "cap_gb", "kind", "accuracy", f"mean_last_{SMOOTH}", "round",
                    "ended_below_cap"])
        for m in runs:
            for cap in caps:
                for kind in KINDS:
                    hit, smooth = accuracy_at(rows[m], cap, kind), accuracy_at(rows[m], cap, kind, SMOOTH)
                    w.writerow([m, cap, kind, *((hit[0], smooth[0], hit[1], hit[2]) if hit and smooth
                                                else ("", "", "", ""))])

    lines = [f"# Comparison: {folder.name}", "",
             "## Summary", "",
             "| method | rounds | final client acc | final central acc | upload GB | download GB "
             "| density | wall time (s) | run folder |",
             "|---|---|---|---|---|---|---|---|---|"]
    for m, s in summaries.items():
        lines.append(f"| {m} | {s['rounds']} | {_pct(s['final_client_accuracy'])} | "
                     f"{_pct(s['final_central_accuracy'])} | {totals[m]:.3f} | "
                     f"{s['total_download_bytes'] / GB:.3f} | {_num(s.get('final_density'))} | "
                     f"{_num(s.get('wall_time_s'), 0)} | {runs[m].name} |")
    for kind, last, what in (("client", 1, "last evaluation"), ("central", 1, "last evaluation"),
                             ("client", SMOOTH, f"mean of the last {SMOOTH} evaluations")):
        lines += ["", f"## {kind.capitalize()}-test accuracy (%) at cumulative upload caps "
                  f"({what} within the cap)", "",
                  "`*` = the run ended below the cap (final accuracy); (rN) = last round evaluated.",
                  "", "| method | " + " | ".join(f"{c:g} GB" for c in caps) + " |",
                  "|---|" + "---|" * len(caps)]
        for m in runs:
            lines.append(f"| {m} | " + " | ".join(_cell(accuracy_at(rows[m], c, kind, last))
                                                  for c in caps) + " |")
    headline = _headline(rows, sparse, caps, reference)
    if headline:
        lines += ["", f"## Sparse methods against {reference} (points of client-test accuracy)",
                  "", f"Same cap: acc(method, C) - acc({reference}, C); twice: "
                  f"acc(method, C) - acc({reference}, 2C); acc = mean of the last {SMOOTH} "
                  "evaluations within the cap.", "",
                  "| method | cap GB | same cap | reference at twice the cap |", "|---|---|---|---|",
                  *headline]
    (folder / "comparison.md").write_text("\n".join(lines) + "\n")
    (folder / "comparison.json").write_text(json.dumps(
        {"caps_gb": caps, "runs": {m: str(p) for m, p in runs.items()}, "summaries": summaries},
        indent=2) + "\n")
    for x, xname in (("cumulative_upload_bytes", "upload"), ("cumulative_download_bytes", "download")):
        for kind in KINDS:
            compare_plot(rows, x, f"{kind}_accuracy", folder / f"{kind}_accuracy_vs_{xname}.png",
                         xlabel=f"cumulative {xname} (GB)", ylabel=f"{kind}-test accuracy",
                         byte_unit=("GB", GB))
    return folder / "comparison.md"


def _headline(rows: dict[str, Rows], sparse: list[str], caps: list[float], ref: str) -> list[str]:
    if ref not in rows:
        return []
    out = []
    for m in (m for m in sparse if m in rows):
        for cap in caps:
            mine = accuracy_at(rows[m], cap, "client", SMOOTH)
            same = accuracy_at(rows[ref], cap, "client", SMOOTH)
            twice = accuracy_at(rows[ref], 2 * cap, "client", SMOOTH)
            if mine is None:
                continue
            twice_txt = (f"{100 * (mine[0] - twice[0]):+.1f}" if twice and not twice[2]
                         else "n/a (reference run ended below 2C)")
            out.append(f"| {m} | {cap:g} | {_delta(mine, same)} | {twice_txt} |")
    return out


def _delta(a: tuple[float, int, bool], b: tuple[float, int, bool] | None) -> str:
    return "-" if b is None else f"{100 * (a[0] - b[0]):+.1f}"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.1f}"


def _num(v: float | None, digits: int = 3) -> str:
    return "-" if v is None else f"{v:.{digits}f}"
