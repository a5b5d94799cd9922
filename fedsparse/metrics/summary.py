"""`summarize`: the summary.json of a run from its metric rows; `summary_lines`: its console report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

GB = 1e9


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Final/best accuracies, rounds run, traffic, wall time and final density (None when unknown).

    Reads the row keys `round`, `central_accuracy`, `client_accuracy`, `cumulative_upload_bytes`,
    `cumulative_download_bytes`, `round_time_s` and `density`; keys may be missing on some rows.
    """
    out: dict[str, Any] = {"rounds": max((r["round"] for r in rows), default=0)}
    for kind in ("central", "client"):
        key = f"{kind}_accuracy"
        evaluated = [r for r in rows if r.get(key) is not None]
        best = max(evaluated, key=lambda r: r[key], default=None)
        out[f"final_{key}"] = evaluated[-1][key] if evaluated else None
        out[f"final_{key}_round"] = evaluated[-1]["round"] if evaluated else None
        out[f"best_{key}"] = best[key] if best else None
        out[f"best_{key}_round"] = best["round"] if best else None
    out["total_upload_bytes"] = _last(rows, "cumulative_upload_bytes")
    out["total_download_bytes"] = _last(rows, "cumulative_download_bytes")
    times = [r["round_time_s"] for r in rows if r.get("round_time_s") is not None]
    out["wall_time_s"] = sum(times) if times else None
    out["final_density"] = _last(rows, "density")
    return out


def _last(rows: list[dict[str, Any]], key: str) -> Any:
    return next((r[key] for r in reversed(rows) if r.get(key) is not None), None)


def summary_lines(summary: dict[str, Any], run_path: Path, wall_s: float) -> list[str]:
    """The end-of-run report printed to the console: accuracies (final and best, with their
    rounds), cumulative traffic in GB, wall time (`wall_s`: this process) and the run folder's
    files."""
    from fedsparse.metrics.progress import duration

    rounds_s = summary.get("wall_time_s")
    lines = [f"done: {summary['rounds']} rounds; wall time {duration(wall_s)}"
             + (f" (the rounds themselves: {duration(rounds_s)})" if rounds_s is not None else "")]
    for kind, label in (("central", "central test accuracy:"), ("client", "client test accuracy: ")):
        key = f"{kind}_accuracy"
        if summary.get(f"final_{key}") is None:
            lines.append(f"{label} not evaluated")
            continue
        lines.append(f"{label} final {summary[f'final_{key}']:.4f} (round "
                     f"{summary[f'final_{key}_round']}), best {summary[f'best_{key}']:.4f} "
                     f"(round {summary[f'best_{key}_round']})")
    gb = {d: summary.get(f"total_{d}_bytes") for d in ("upload", "download")}
    lines.append("cumulative traffic: " + ", ".join(
        f"{d} {'-' if b is None else f'{b / GB:.4g}'} GB" for d, b in gb.items()))
    files = sorted(p.name + ("/" if p.is_dir() else "") for p in run_path.iterdir()
                   if not p.name.startswith("."))
    lines.append(f"run folder: {run_path}")
    lines.append("  " + " ".join(files))
    return lines
