"""`RunFolder`: one run's output folder (config.yaml, metrics.jsonl + metrics.csv, summary.json,
plots)."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch

from fedsparse.errors import ConfigError, DataError

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.jsonl"
CSV_FILE = "metrics.csv"
SUMMARY_FILE = "summary.json"
CHECKPOINT_DIR = "checkpoint"
CHECKPOINT_FILE = "checkpoint.json"
RESTARTS_FILE = "restarts.json"
NODES_DIR = "nodes"

# metrics.csv: the rows' scalar values, these columns first, then the others in first-seen order;
# dict-valued keys listed in CSV_FLATTENED become `<key>_<field>` columns, other dicts and lists
# (per-client bytes, per-layer density, sampled clients) stay in metrics.jsonl only.
CSV_FIRST = ("round", "central_accuracy", "client_accuracy", "client_accuracy_std",
             "client_accuracy_min", "central_loss", "train_loss", "upload_bytes", "download_bytes",
             "cumulative_upload_bytes", "cumulative_download_bytes", "density")
CSV_FLATTENED = ("failures",)


class RunFolder:
    """An existing run folder. Metric rows are durable per line: each append is fsync'd.

    `metrics.csv` mirrors metrics.jsonl's scalar values (see `csv_cells`); it is derived data,
    appended with each row (not fsync'd) and rewritten whole from metrics.jsonl when a row brings
    a new column and when a resume truncates the rows.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        if not self.path.is_dir():
            raise DataError(f"run folder '{self.path}' does not exist")

    @classmethod
    def create(cls, output_dir: str, name: str, seed: int) -> RunFolder:
        """Make `output_dir/<name>-<YYYYmmdd-HHMMSS>-s<seed>`, adding `-1`, `-2`, ... if taken."""
        if not name or os.sep in name or (os.altsep and os.altsep in name):
            raise ConfigError(f"run name '{name}' must be non-empty and contain no path separator")
        root = Path(output_dir)
        root.mkdir(parents=True, exist_ok=True)
        base = f"{name}-{datetime.now():%Y%m%d-%H%M%S}-s{seed}"
        suffix = 0
        while True:
            path = root / (base if suffix == 0 else f"{base}-{suffix}")
            try:
                path.mkdir()
            except FileExistsError:
                suffix += 1
                continue
            return cls(path)

    def path_for(self, name: str) -> Path:
        return self.path / name

    def write_config(self, yaml_text: str) -> None:
        _atomic_write(self.path_for(CONFIG_FILE), yaml_text)

    def write_summary(self, summary: dict[str, Any]) -> None:
        _atomic_write(self.path_for(SUMMARY_FILE), json.dumps(to_jsonable(summary), indent=2) + "\n")

    def files(self) -> list[Path]:
        """What the folder holds: its top-level files and folders, sorted by name (temp files of
        atomic writes aside)."""
        return sorted(p for p in self.path.iterdir() if not p.name.startswith("."))

    def append_metrics(self, row: dict[str, Any]) -> None:
        """Append one JSON line and fsync it; a partial last line left by a crash is dropped first.
        Then the row's line of metrics.csv."""
        row = to_jsonable(row)
        line = json.dumps(row, allow_nan=False) + "\n"
        with open(self.path_for(METRICS_FILE), "a+b") as f:
            _drop_partial_tail(f)
            f.write(line.encode())
            f.flush()
            os.fsync(f.fileno())
        self._append_csv(row)

    def write_csv(self) -> Path:
        """Rewrite metrics.csv from metrics.jsonl (atomic); returns its path."""
        rows = [csv_cells(r) for r in self.read_metrics()]
        columns = csv_columns(rows)
        path = self.path_for(CSV_FILE)
        _atomic_write(path, _csv_text([columns, *([r.get(c) for c in columns] for r in rows)]))
        return path

    def _append_csv(self, row: dict[str, Any]) -> None:
        path = self.path_for(CSV_FILE)
        cells = csv_cells(row)
        header = _csv_header(path)
        if header is None or not cells.keys() <= set(header):
            self.write_csv()  # new file or a new column: the header changes
            return
        with open(path, "a+b") as f:
            _drop_partial_tail(f)
            f.write(_csv_text([[cells.get(c) for c in header]]).encode())

    def read_metrics(self) -> list[dict[str, Any]]:
        """All complete rows; a trailing line without its newline (crash mid-write) is ignored."""
        path = self.path_for(METRICS_FILE)
        if not path.exists():
            return []
        # the piece after the last newline is "" or a line cut short by a crash
        lines = path.read_text(encoding="utf-8").split("\n")[:-1]
        rows = []
        for i, line in enumerate(lines, start=1):
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise DataError(f"{path}:{i}: not a JSON line ({e})") from None
        return rows

    def truncate_metrics_after(self, round: int) -> None:
        """Keep only rows with `row["round"] <= round` (for resuming); atomic rewrite."""
        kept = [r for r in self.read_metrics() if r["round"] <= round]
        _atomic_write(
            self.path_for(METRICS_FILE),
            "".join(json.dumps(r, allow_nan=False) + "\n" for r in kept),
        )
        self.write_csv()

    def read_restarts(self) -> list[dict[str, Any]]:
        """The run's restarts (one entry per resume, with its own setup traffic); [] if none."""
        path = self.path_for(RESTARTS_FILE)
        if not path.exists():
            return []
        try:
            return list(json.loads(path.read_text(encoding="utf-8")))
        except (ValueError, TypeError) as e:
            raise DataError(f"{path}: not a JSON list ({e})") from None

    def add_restart(self, entry: dict[str, Any]) -> None:
        """Append one restart entry to `restarts.json` (atomic rewrite)."""
        entries = [*self.read_restarts(), to_jsonable(entry)]
        _atomic_write(self.path_for(RESTARTS_FILE), json.dumps(entries, indent=2) + "\n")

    def replace_last_restart(self, entry: dict[str, Any]) -> None:
        """Replace the last restart entry (the running restart's, as its figures grow)."""
        entries = [*self.read_restarts()[:-1], to_jsonable(entry)]
        _atomic_write(self.path_for(RESTARTS_FILE), json.dumps(entries, indent=2) + "\n")

    def __repr__(self) -> str:
        return f"RunFolder('{self.path}')"


def to_jsonable(value: Any) -> Any:
    """Plain JSON types: numpy/torch scalars -> Python numbers, arrays -> lists, NaN/inf -> None."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, (torch.Tensor, np.ndarray)):
        return to_jsonable(value.tolist())
    if isinstance(value, np.generic):
        return to_jsonable(value.item())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (bool, int, str)):
        return value
    raise TypeError(f"{type(value).__name__} value {value!r} is not JSON-serialisable")


def csv_cells(row: dict[str, Any]) -> dict[str, Any]:
    """A metrics row's values for metrics.csv: its scalars (None included), and the fields of the
    dicts named in CSV_FLATTENED as `<key>_<field>`."""
    cells: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, dict) and key in CSV_FLATTENED:
            cells.update((f"{key}_{field}", v) for field, v in value.items())
        elif value is None or isinstance(value, (bool, int, float, str)):
            cells[key] = value
    return cells


def csv_columns(rows: list[dict[str, Any]]) -> list[str]:
    """The CSV_FIRST columns some row has, then the rows' other keys in first-seen order."""
    seen = dict.fromkeys(key for row in rows for key in row)
    return [c for c in CSV_FIRST if c in seen] + [c for c in seen if c not in CSV_FIRST]


def _csv_text(lines: list[list[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerows([["" if v is None else v for v in line] for line in lines])
    return out.getvalue()


def _csv_header(path: Path) -> list[str] | None:
    """The column names of an existing metrics.csv; None when it is missing or has no whole line."""
    try:
        with open(path, encoding="utf-8", newline="") as f:
            first = f.readline()
    except FileNotFoundError:
        return None
    return next(csv.reader([first])) if first.endswith("\n") else None


def _drop_partial_tail(f: BinaryIO) -> None:
    """Cut a file opened "a+b" back to just after its last newline (no-op when it ends in one)."""
    size = f.seek(0, os.SEEK_END)
    if size == 0:
        return
    f.seek(size - 1)
    if f.read(1) == b"\n":
        return
    f.seek(0)
    f.truncate(f.read().rfind(b"\n") + 1)


def _atomic_write(path: Path, text: str) -> None:
    """Write via a fsync'd temp file in the same folder + os.replace."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` via a fsync'd temp file in the same folder + os.replace (+ fsync of the folder):
    readers see the old file or the new one, never a partial one, even after a crash."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # make the rename itself durable
    finally:
        os.close(dir_fd)
