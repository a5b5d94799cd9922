"""Heatmaps (method x split at each sparsity) and a markdown summary from the bench's CSV rows."""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

Row = dict[str, str]
GROUP = ("sparsity", "scoring", "ablation", "variant")


def _num(v: str | None) -> float | None:
    try:
        return float(v) if v not in (None, "") else None
    except ValueError:
        return None


def _order(rows: Sequence[Row], key: str, preferred: Sequence[str] = ()) -> list[str]:
    seen = list(dict.fromkeys(r[key] for r in rows))
    return [p for p in preferred if p in seen] + [s for s in seen if s not in preferred]


def accuracy_table(rows: Sequence[Row], methods: Sequence[str], splits: Sequence[str],
                   metric: str = "central_accuracy") -> tuple[np.ndarray, np.ndarray]:
    """(mean, n) matrices methods x splits of `metric` over the rows (seeds); NaN where absent."""
    cells: dict[tuple[str, str], list[float]] = defaultdict(list)
    for r in rows:
        v = _num(r.get(metric))
        if v is not None:
            cells[(r["method"], r["split"])].append(v)
    mean = np.full((len(methods), len(splits)), np.nan)
    count = np.zeros((len(methods), len(splits)), dtype=int)
    for i, m in enumerate(methods):
        for j, s in enumerate(splits):
            vals = cells.get((m, s), [])
            if vals:
                mean[i, j], count[i, j] = statistics.fmean(vals), len(vals)
    return mean, count


def groups(rows: Sequence[Row]) -> dict[tuple[str, ...], list[Row]]:
    """Rows by (sparsity, scoring, ablation, variant), sparsities ascending."""
    out: dict[tuple[str, ...], list[Row]] = defaultdict(list)
    for r in rows:
        out[tuple(r[k] for k in GROUP)].append(r)
    return dict(sorted(out.items(), key=lambda kv: (float(kv[0][0]), kv[0][1:])))


def heatmap(rows: Sequence[Row], methods: Sequence[str], splits: Sequence[str], path: Path,
            title: str) -> Path:
    """Central accuracy (%) of methods x splits, annotated."""
    mean, _ = accuracy_table(rows, methods, splits)
    shown_rows = [i for i in range(len(methods)) if np.isfinite(mean[i]).any()]
    mean, methods = mean[shown_rows], [methods[i] for i in shown_rows]
    fig = Figure(figsize=(3.4 + 1.25 * len(splits), 1.4 + 0.5 * len(methods)), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    pct = mean * 100
    lo, hi = (float(np.nanmin(pct)), float(np.nanmax(pct))) if np.isfinite(pct).any() else (0.0, 100.0)
    shown = ax.imshow(pct, cmap="viridis", aspect="auto", vmin=lo, vmax=max(hi, lo + 1e-6))
    ax.set_xticks(range(len(splits)), splits, rotation=20, ha="right")
    ax.set_yticks(range(len(methods)), methods)
    for i in range(len(methods)):
        for j in range(len(splits)):
            if np.isfinite(pct[i, j]):
                light = (pct[i, j] - lo) / max(hi - lo, 1e-6) > 0.6  # yellow end of viridis
                ax.text(j, i, f"{pct[i, j]:.1f}", ha="center", va="center",
                        color="k" if light else "w", fontsize=9)
    fig.colorbar(shown, ax=ax, label="central test accuracy (%)")
    ax.set_title(title, fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


def _label(group: tuple[str, ...]) -> str:
    sparsity, scoring, ablation, variant = group
    parts = [f"sparsity {sparsity}", f"scoring={scoring}"]
    if ablation != "none":
        parts.append(f"ablation={ablation}")
    if variant != "base":
        parts.append(f"variant={variant}")
    return ", ".join(parts)


def _file(group: tuple[str, ...]) -> str:
    return "heatmap_s{}_{}_{}_{}.png".format(*group)


def within_one_point(rows: Sequence[Row], points: float = 1.0) -> list[dict[str, object]]:
    """Per (method, split, scoring, ablation, variant) with a dense cell (sparsity 0): its dense
    accuracy and the highest sparsity whose accuracy (mean over seeds) is >= dense - `points`
    percentage points, checked up to the first sparsity that is not (so a lucky higher one after
    a failure does not count)."""
    by: dict[tuple[str, ...], dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        acc = _num(r.get("central_accuracy"))
        if acc is not None:
            key = (r["method"], r["split"], r["scoring"], r["ablation"], r["variant"])
            by[key][float(r["sparsity"])].append(acc)
    out = []
    for key, accs in by.items():
        if 0.0 not in accs:
            continue
        dense = statistics.fmean(accs[0.0])
        best = 0.0
        for s in sorted(accs):
            if 100 * statistics.fmean(accs[s]) < 100 * dense - points:
                break
            best = s
        out.append({"key": key, "dense": dense, "highest": best,
                    "curve": {s: statistics.fmean(v) for s, v in sorted(accs.items())}})
    return out


def tolerance_lines(rows: Sequence[Row]) -> list[str]:
    found = within_one_point(rows)
    if not found:
        return []
    lines = ["## Highest sparsity within 1 point of dense", "",
             "| method | split | scoring | ablation | variant | dense acc. | highest sparsity | "
             "accuracy by sparsity |", "|---|---|---|---|---|---|---|---|"]
    for f in found:
        curve = ", ".join(f"{s:g}: {100 * a:.1f}" for s, a in f["curve"].items())
        lines.append("| " + " | ".join(f["key"]) + f" | {100 * f['dense']:.1f} | "
                     f"{f['highest']:g} | {curve} |")
    return lines + [""]


def write_report(rows: Sequence[Row], out_dir: Path, methods: Sequence[str] = (),
                 splits: Sequence[str] = (), header: str = "") -> tuple[Path, list[Path]]:
    """`heatmaps/*.png` (one per group) and `summary.md` (one accuracy table per group, then
    traffic and wall time per cell); returns (summary path, heatmap paths)."""
    methods = _order(rows, "method", methods)
    splits = _order(rows, "split", splits)
    pngs = []
    lines = ["# Pruning bench summary", ""]
    if header:
        lines += [header, ""]
    lines += [f"{len(rows)} cells. Values: final central test accuracy (%), mean over seeds "
              "(n = seeds when > 1).", ""]
    for group, grows in groups(rows).items():
        png = heatmap(grows, methods, splits, out_dir / "heatmaps" / _file(group), _label(group))
        pngs.append(png)
        mean, count = accuracy_table(grows, methods, splits)
        lines += [f"## {_label(group)}", "", f"![{_label(group)}](heatmaps/{png.name})", "",
                  "| method | " + " | ".join(splits) + " |",
                  "|---|" + "---|" * len(splits)]
        for i, m in enumerate(methods):
            if not np.isfinite(mean[i]).any():
                continue
            vals = [("" if not np.isfinite(mean[i, j]) else f"{100 * mean[i, j]:.1f}"
                     + (f" (n={count[i, j]})" if count[i, j] > 1 else "")) for j in range(len(splits))]
            lines.append(f"| {m} | " + " | ".join(vals) + " |")
        lines.append("")
    lines += tolerance_lines(rows)
    lines += ["## Cells", "",
              "| method | sparsity | split | scoring | ablation | variant | seed | central acc. | "
              "client acc. | upload MB | download MB | wall s |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        up, down = _num(r.get("upload_bytes")), _num(r.get("download_bytes"))
        acc, cacc = _num(r.get("central_accuracy")), _num(r.get("client_accuracy"))
        lines.append("| " + " | ".join([
            r["method"], r["sparsity"], r["split"], r["scoring"], r["ablation"], r["variant"],
            r["seed"], "" if acc is None else f"{100 * acc:.1f}",
            "" if cacc is None else f"{100 * cacc:.1f}", "" if up is None else f"{up / 1e6:.2f}",
            "" if down is None else f"{down / 1e6:.2f}", r.get("wall_time_s", "")]) + " |")
    total = sum(_num(r.get("wall_time_s")) or 0.0 for r in rows)
    lines += ["", f"Total wall time of these cells: {total:.0f} s.", ""]
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = out_dir / "summary.md"
    summary.write_text("\n".join(lines), encoding="utf-8")
    return summary, pngs
