"""The bench's tidy CSV: one row per finished cell, appended (and fsync'd) as each cell ends.

Resuming reads the cells already present (by their `grid.KEY` columns and the hash of their run
config, so a row made with other settings does not count) and skips them. A last line cut short
by a crash is dropped before the next append.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any

from fedsparse.bench.grid import KEY
from fedsparse.errors import DataError

COLUMNS = (*KEY, "central_accuracy", "client_accuracy", "best_central_accuracy",
           "upload_bytes", "download_bytes", "density", "params_active", "params_total",
           "macs_sparse", "macs_dense", "macs_inputs_removed", "inputs_kept", "inputs_total",
           "rounds", "rounds_time_s", "wall_time_s", "run_folder", "config_hash")


def _drop_partial_tail(path: Path) -> None:
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        path.write_bytes(data[: data.rfind(b"\n") + 1])


def read_rows(path: Path) -> list[dict[str, str]]:
    """Complete rows of the CSV (none when it does not exist)."""
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8")
    if text and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is not None and tuple(reader.fieldnames) != COLUMNS:
        raise DataError(f"{path}: its columns {reader.fieldnames} are not this bench's "
                        f"{list(COLUMNS)}; use another output_dir")
    return list(reader)


def row_key(row: dict[str, str]) -> tuple[str, ...]:
    """(cell key..., config hash) of a CSV row."""
    return (*(row[k] for k in KEY), row["config_hash"])


def done_keys(path: Path) -> set[tuple[str, ...]]:
    """(cell key..., config hash) of the cells present in the CSV."""
    return {row_key(row) for row in read_rows(path)}


def append_row(path: Path, row: dict[str, Any]) -> None:
    """Append one row (header first on a new file); fsync'd."""
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists() or path.stat().st_size == 0
    if not new:
        _drop_partial_tail(path)
        read_rows(path)  # header check
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    if new:
        writer.writeheader()
    writer.writerow({k: _fmt(row.get(k)) for k in COLUMNS})
    with open(path, "a", encoding="utf-8") as f:
        f.write(buf.getvalue())
        f.flush()
        os.fsync(f.fileno())


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)
