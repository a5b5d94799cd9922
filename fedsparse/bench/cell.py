"""Run one bench cell through the real runner (one Flower + Ray simulation) and read its row."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from fedsparse.bench.grid import Cell, config_hash
from fedsparse.config import Config


def run_cell(cfg: Config) -> Path:
    """`fedsparse.runner.run_simulation(cfg)`: the run folder."""
    from fedsparse.runner import run_simulation

    return run_simulation(cfg)


def cell_row(cell: Cell, run: Path, wall_time_s: float) -> dict[str, Any]:
    """The CSV row of a finished cell from its run folder (summary.json, initial_mask.json)."""
    summary = json.loads((run / "summary.json").read_text())
    mask_info_path = run / "initial_mask.json"
    mask_info = json.loads(mask_info_path.read_text()) if mask_info_path.exists() else {}
    row: dict[str, Any] = dict(zip(("method", "sparsity", "split", "scoring", "ablation",
                                    "variant", "seed"), cell.key))
    row.update({
        "central_accuracy": summary.get("final_central_accuracy"),
        "client_accuracy": summary.get("final_client_accuracy"),
        "best_central_accuracy": summary.get("best_central_accuracy"),
        "upload_bytes": summary.get("total_upload_bytes"),
        "download_bytes": summary.get("total_download_bytes"),
        "density": summary.get("final_density"),
        "rounds": summary.get("rounds"),
        "rounds_time_s": summary.get("wall_time_s"),
        "wall_time_s": round(wall_time_s, 2),
        "run_folder": str(run),
    })
    for k in ("params_active", "params_total", "macs_sparse", "macs_dense", "macs_inputs_removed",
              "inputs_kept", "inputs_total"):
        row[k] = mask_info.get(k)
    return row


def run_and_measure(cell: Cell, cfg: Config) -> dict[str, Any]:
    """Run the cell; its row, with the wall time of the whole simulation (Ray start included)."""
    t0 = time.perf_counter()
    run = run_cell(cfg)
    return {**cell_row(cell, run, time.perf_counter() - t0), "config_hash": config_hash(cfg)}
