"""PNG plots of a run's metrics.jsonl, and multi-run comparison plots (Agg, no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from fedsparse.errors import DataError
from fedsparse.metrics.run_folder import RunFolder

MB = 1e6
Rows = list[dict[str, Any]]


def make_plots(run: RunFolder) -> list[Path]:
    """Write the standard plots into the run folder; a plot whose data is absent is skipped."""
    rows = run.read_metrics()
    written = []
    for filename, draw in (
        ("accuracy_vs_round.png", _accuracy_vs_round),
        ("accuracy_vs_upload.png", _accuracy_vs_upload),
        ("layer_density.png", _layer_density),
        ("mask_churn.png", _mask_churn),
    ):
        fig = _figure()
        if draw(fig.gca(), rows):
            path = run.path_for(filename)
            _save(fig, path)
            written.append(path)
    return written


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
    drawn = [name for name, rows in runs.items()
             if _curve(ax, rows, x, y, label=name, byte_scale=scale)]
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
    drawn = [_curve(ax, rows, "round", f"{k}_accuracy", label=k) for k in ("central", "client")]
    ax.set(xlabel="round", ylabel="accuracy", title="Accuracy vs round")
    return _finish(ax, any(drawn))


def _accuracy_vs_upload(ax: Axes, rows: Rows) -> bool:
    drawn = [
        _curve(ax, rows, "cumulative_upload_bytes", f"{k}_accuracy", label=k)
        for k in ("central", "client")
    ]
    ax.set(xlabel="cumulative upload (MB)", ylabel="accuracy", title="Accuracy vs upload")
    return _finish(ax, any(drawn))


def _layer_density(ax: Axes, rows: Rows) -> bool:
    with_density = [r for r in rows if r.get("layer_density")]
    layers = list(dict.fromkeys(name for r in with_density for name in r["layer_density"]))
    for name in layers:
        seen = [r for r in with_density if name in r["layer_density"]]
        ys = [r["layer_density"][name] for r in seen]
        ax.plot([r["round"] for r in seen], ys, marker=".", label=name)
    ax.set(xlabel="round", ylabel="density", title="Per-layer density")
    if layers:
        ax.legend(fontsize="x-small", ncols=1 + len(layers) // 12)
    return bool(layers)


def _mask_churn(ax: Axes, rows: Rows) -> bool:
    drawn = _curve(ax, rows, "round", "mask_changes")
    ax.set(xlabel="round", ylabel="mask changes", title="Mask churn")
    return drawn


def _curve(ax: Axes, rows: Rows, x: str, y: str, label: str | None = None,
           byte_scale: float = MB) -> bool:
    """Plot the rows holding both keys; False (nothing drawn) when there are none."""
    points = [(r[x], r[y]) for r in rows if r.get(x) is not None and r.get(y) is not None]
    if not points:
        return False
    xs, ys = zip(*points)
    scale_x, scale_y = (byte_scale if k.endswith("_bytes") else 1.0 for k in (x, y))
    ax.plot([v / scale_x for v in xs], [v / scale_y for v in ys], marker=".", label=label)
    return True


def _finish(ax: Axes, drawn: bool) -> bool:
    if drawn:
        ax.legend()
    return drawn


def _figure() -> Figure:
    fig = Figure(figsize=(6.4, 4.4), layout="constrained")
    FigureCanvasAgg(fig)
    fig.add_subplot()
    return fig


def _save(fig: Figure, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
