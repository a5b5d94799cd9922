"""PNG plots of a run's metrics.jsonl, and multi-run comparison plots (Agg, no display needed).

Every run figure carries the run's name (its folder's name) as its super-title; byte axes are in
bytes, kB, MB or GB, whichever is the largest unit their largest value reaches (`fit_byte_unit`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from fedsparse.errors import DataError
from fedsparse.metrics.run_folder import RunFolder

KB, MB, GB = 1e3, 1e6, 1e9
Rows = list[dict[str, Any]]
Draw = Callable[[Axes, Rows], bool]
ACCURACY_LABELS = {"central": "central test set", "client": "clients' test sets (mean)"}
OVERVIEW_FILE = "overview.png"
MARKED_POINTS = 60


def make_plots(run: RunFolder) -> list[Path]:
    """Write the run's figures (`run_figures`) into its folder; returns their paths."""
    written = []
    for filename, fig in run_figures(run.read_metrics(), run.path.name).items():
        path = run.path_for(filename)
        _save(fig, path)
        written.append(path)
    return written


def run_figures(rows: Rows, run_name: str) -> dict[str, Figure]:
    """The figures of a run's metric rows by file name: one per quantity, then `overview.png`
    (accuracy vs round and vs cumulative upload, loss, bytes per round). A figure whose data is
    absent is left out; an overview panel without data says so."""
    figures = {}
    for filename, draw in RUN_PLOTS.items():
        fig = _figure(run_name)
        if draw(fig.gca(), rows):
            figures[filename] = fig
    overview = _overview(rows, run_name)
    if overview is not None:
        figures[OVERVIEW_FILE] = overview
    return figures


def fit_byte_unit(largest: float) -> tuple[str, float]:
    """(name, bytes per unit) of the largest unit in which `largest` bytes is at least 1."""
    for name, scale in (("GB", GB), ("MB", MB), ("kB", KB)):
        if largest >= scale:
            return name, scale
    return "bytes", 1.0


def compare_plot(
    runs: dict[str, Rows],
    x: str,
    y: str,
    path: Path,
    xlabel: str | None = None,
    ylabel: str | None = None,
    byte_unit: tuple[str, float] = ("MB", MB),
) -> Path:
    """One curve per run of `y` against `x` (keys ending in `_bytes` are shown in `byte_unit`)."""
    fig = _figure()
    ax = fig.gca()
    unit, scale = byte_unit
    scale_x, scale_y = (scale if k.endswith("_bytes") else 1.0 for k in (x, y))
    drawn = [name for name, rows in runs.items()
             if _curve(ax, rows, x, y, label=name, scale_x=scale_x, scale_y=scale_y)]
    if not drawn:
        raise DataError(f"no run has both '{x}' and '{y}' in its metrics")
    ax.set_xlabel(xlabel or (f"{x} ({unit})" if x.endswith("_bytes") else x))
    ax.set_ylabel(ylabel or (f"{y} ({unit})" if y.endswith("_bytes") else y))
    if len(drawn) > 4:  # keep many curves readable: the legend goes beside the axes
        fig.set_figwidth(8.4)
        ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize="small")
    else:
        ax.legend()
    _save(fig, path)
    return path


def _accuracy_vs_round(ax: Axes, rows: Rows) -> bool:
    drawn = [_curve(ax, rows, "round", f"{k}_accuracy", label=label)
             for k, label in ACCURACY_LABELS.items()]
    ax.set(xlabel="round", ylabel="test accuracy", title="Accuracy vs round")
    _integer_rounds(ax)
    return _finish(ax, any(drawn))


def _accuracy_vs_upload(ax: Axes, rows: Rows) -> bool:
    unit, scale = fit_byte_unit(_largest(rows, "cumulative_upload_bytes"))
    drawn = [_curve(ax, rows, "cumulative_upload_bytes", f"{k}_accuracy", label=label,
                    scale_x=scale) for k, label in ACCURACY_LABELS.items()]
    ax.set(xlabel=f"cumulative upload ({unit})", ylabel="test accuracy",
           title="Accuracy vs cumulative upload")
    return _finish(ax, any(drawn))


def _loss_vs_round(ax: Axes, rows: Rows) -> bool:
    drawn = [_curve(ax, rows, "round", "train_loss", label="training (sampled clients, mean)"),
             _curve(ax, rows, "round", "central_loss", label="central test set")]
    ax.set(xlabel="round", ylabel="cross-entropy loss", title="Loss")
    _integer_rounds(ax)
    return _finish(ax, any(drawn))


def _bytes_per_round(ax: Axes, rows: Rows) -> bool:
    largest = max(_largest(rows, "upload_bytes"), _largest(rows, "download_bytes"))
    unit, scale = fit_byte_unit(largest)
    drawn = [_curve(ax, rows, "round", f"{way}_bytes", label=way, scale_y=scale, linestyle=style)
             for way, style in (("upload", "-"), ("download", "--"))]
    ax.set(xlabel="round (0: setup)", ylabel=f"{unit} per round", title="Bytes per round")
    ax.set_ylim(bottom=0)
    _integer_rounds(ax)
    return _finish(ax, any(drawn))


def _layer_density(ax: Axes, rows: Rows) -> bool:
    with_density = [r for r in rows if r.get("layer_density")]
    layers = list(dict.fromkeys(name for r in with_density for name in r["layer_density"]))
    for name in layers:
        seen = [r for r in with_density if name in r["layer_density"]]
        ys = [r["layer_density"][name] for r in seen]
        ax.plot([r["round"] for r in seen], ys, label=name,
                marker="." if len(seen) <= MARKED_POINTS else None)
    ax.set(xlabel="round", ylabel="density", title="Per-layer density")
    _integer_rounds(ax)
    if layers:
        ax.legend(fontsize="x-small", ncols=1 + len(layers) // 12)
    return bool(layers)


def _mask_churn(ax: Axes, rows: Rows) -> bool:
    drawn = _curve(ax, rows, "round", "mask_changes")
    ax.set(xlabel="round", ylabel="mask changes", title="Mask churn")
    _integer_rounds(ax)
    return drawn


RUN_PLOTS: dict[str, Draw] = {
    "accuracy_vs_round.png": _accuracy_vs_round,
    "accuracy_vs_upload.png": _accuracy_vs_upload,
    "loss_vs_round.png": _loss_vs_round,
    "bytes_per_round.png": _bytes_per_round,
    "layer_density.png": _layer_density,
    "mask_churn.png": _mask_churn,
}
OVERVIEW_PANELS: tuple[Draw, ...] = (_accuracy_vs_round, _accuracy_vs_upload, _loss_vs_round,
                                     _bytes_per_round)


def _overview(rows: Rows, run_name: str) -> Figure | None:
    """2 x 2 panels (OVERVIEW_PANELS) under the run's name and headline numbers; None if all
    panels are empty."""
    fig = Figure(figsize=(11.0, 7.6), layout="constrained")
    FigureCanvasAgg(fig)
    drawn = []
    for ax, draw in zip(fig.subplots(2, 2).flat, OVERVIEW_PANELS):
        drawn.append(draw(ax, rows))
        if not drawn[-1]:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
    if not any(drawn):
        return None
    fig.suptitle(f"{run_name}\n{_headline(rows)}", fontsize="medium")
    return fig


def _headline(rows: Rows) -> str:
    """'N rounds, final accuracy central C / clients K, upload U' (what is known)."""
    parts = [f"{max(r['round'] for r in rows)} rounds"]
    accuracies = [f"{name} {value:.1%}" for name, key in (("central", "central_accuracy"),
                                                          ("clients", "client_accuracy"))
                  if (value := _last(rows, key)) is not None]
    if accuracies:
        parts.append("final accuracy " + " / ".join(accuracies))
    upload = _last(rows, "cumulative_upload_bytes")
    if upload is not None:
        unit, scale = fit_byte_unit(upload)
        parts.append(f"upload {upload / scale:.3g} {unit}")
    return ", ".join(parts)


def _curve(ax: Axes, rows: Rows, x: str, y: str, label: str | None = None,
           scale_x: float = 1.0, scale_y: float = 1.0, linestyle: str = "-") -> bool:
    """Plot the rows holding both keys (divided by the scales; a marker on each point when there
    are at most MARKED_POINTS); False when there are none."""
    points = [(r[x], r[y]) for r in rows if r.get(x) is not None and r.get(y) is not None]
    if not points:
        return False
    xs, ys = zip(*points)
    ax.plot([v / scale_x for v in xs], [v / scale_y for v in ys], label=label, linestyle=linestyle,
            marker="." if len(points) <= MARKED_POINTS else None)
    return True


def _largest(rows: Rows, key: str) -> float:
    return max((r[key] for r in rows if r.get(key) is not None), default=0.0)


def _last(rows: Rows, key: str) -> Any:
    return next((r[key] for r in reversed(rows) if r.get(key) is not None), None)


def _integer_rounds(ax: Axes) -> None:
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _finish(ax: Axes, drawn: bool) -> bool:
    if drawn:
        ax.legend()
    return drawn


def _figure(run_name: str | None = None) -> Figure:
    fig = Figure(figsize=(6.4, 4.4), layout="constrained")
    FigureCanvasAgg(fig)
    fig.add_subplot()
    if run_name:
        fig.suptitle(run_name, fontsize="medium")
    return fig


def _save(fig: Figure, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
