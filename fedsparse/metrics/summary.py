"""`summarize`: the summary.json of a run from its metric rows."""

from __future__ import annotations

from typing import Any


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
