"""`RunFolder`: one run's output folder (config.yaml, metrics.jsonl, summary.json, plots)."""

from __future__ import annotations

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
SUMMARY_FILE = "summary.json"
CHECKPOINT_DIR = "checkpoint"
CHECKPOINT_FILE = "checkpoint.json"
RESTARTS_FILE = "restarts.json"
NODES_DIR = "nodes"


class RunFolder:
    """An existing run folder. Metric rows are durable per line: each append is fsync'd."""

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

    def append_metrics(self, row: dict[str, Any]) -> None:
        """Append one JSON line and fsync it; a partial last line left by a crash is dropped first."""
        line = json.dumps(to_jsonable(row), allow_nan=False) + "\n"
        with open(self.path_for(METRICS_FILE), "a+b") as f:
            _drop_partial_tail(f)
            f.write(line.encode())
            f.flush()
            os.fsync(f.fileno())

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
