"""What a node keeps between rounds: the last global mask it received, so the server can skip
resending mask positions to nodes that are up to date.

Two stores:
- `ContextMaskStore`: Flower's `context.state` (kept by the node's runtime for the run, lost when
  the run restarts). Used when the server runs without checkpoints (`checkpoint_every=0`).
- `DiskMaskStore`: files on the node's own disk, written atomically and fsync'd before the node
  replies, as a real device keeps state on its storage. It survives a restart of the whole
  simulation, which is what makes a resumed run send exactly the bytes an uninterrupted one
  sends. Its folder is `<node state-dir>/<run folder name>/<partition-id>/` when the node was
  started with `--node-config "... state-dir=PATH"`, else `<run folder>/nodes/<partition-id>/`
  (the server sends that path in the node's setup, with its first message; in simulation nodes
  share the machine).

A disk record is named by the round it arrived in (`mask-r<round>.npz`: the positions as they came
over the wire, and the mask version). Reading for round r uses the newest record of a round < r, so
records written by a run that was killed and then resumed from an earlier checkpoint ("from the
future" of the resumed run) are never used. A node keeps, besides the records newer than the
server's last possible checkpoint, the newest one at or before it: the checkpoint the server might
resume from says which mask version the node holds, and that record must still be there.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Protocol

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, RecordDict

from fedsparse.metrics.run_folder import atomic_write_bytes

_RECORD = re.compile(r"^mask-r(\d+)\.npz$")


class MaskStore(Protocol):
    def load(self, server_round: int) -> tuple[int, ArrayRecord] | None:
        """(version, record with `positions` + `position_sizes`) of the mask held before `server_round`."""

    def save(self, server_round: int, version: int, record: ArrayRecord) -> None:
        """Keep the mask (its `positions` + `position_sizes`) received in `server_round`."""


class ContextMaskStore:
    """The node's Flower `context.state` (lost when the simulation restarts)."""

    def __init__(self, state: RecordDict) -> None:
        self.state = state

    def load(self, server_round: int) -> tuple[int, ArrayRecord] | None:
        if "mask" not in self.state:
            return None
        return int(self.state["mask_version"]["version"]), self.state["mask"]

    def save(self, server_round: int, version: int, record: ArrayRecord) -> None:
        self.state["mask"] = ArrayRecord({k: record[k] for k in ("positions", "position_sizes")})
        self.state["mask_version"] = ConfigRecord({"version": version, "round": server_round})


class DiskMaskStore:
    """`mask-r<round>.npz` files in one node's folder (see the module docstring)."""

    def __init__(self, folder: Path, checkpoint_every: int) -> None:
        self.folder = Path(folder)
        self.checkpoint_every = checkpoint_every

    def _records(self) -> dict[int, Path]:
        if not self.folder.is_dir():
            return {}
        found = {}
        for path in self.folder.iterdir():
            if m := _RECORD.match(path.name):
                found[int(m.group(1))] = path
        return found

    def load(self, server_round: int) -> tuple[int, ArrayRecord] | None:
        earlier = [r for r in self._records() if r < server_round]
        if not earlier:
            return None
        with np.load(self._records()[max(earlier)], allow_pickle=False) as f:
            version = int(f["version"])
            record = ArrayRecord({"positions": Array(f["positions"].copy()),
                                  "position_sizes": Array(f["position_sizes"].copy())})
        return version, record

    def last_checkpoint_before(self, server_round: int) -> int:
        """The latest round whose server checkpoint is surely written when `server_round` runs."""
        k = self.checkpoint_every
        return k * ((server_round - 1) // k) if k > 0 else server_round - 1

    def save(self, server_round: int, version: int, record: ArrayRecord) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        np.savez(buf, version=np.int64(version), positions=record["positions"].numpy(),
                 position_sizes=record["position_sizes"].numpy())
        atomic_write_bytes(self.folder / f"mask-r{server_round:08d}.npz", buf.getvalue())
        # forget records the resumable past no longer needs, and any left by a killed run's future
        safe = self.last_checkpoint_before(server_round)
        records = self._records()
        keep_old = max((r for r in records if r <= safe), default=None)
        for r, path in records.items():
            if r > server_round or (r <= safe and r != keep_old):
                path.unlink(missing_ok=True)


def node_folder(state_dir: str, node_state_dir: str | None, pid: int) -> Path:
    """This node's folder: its own `state-dir` node setting if it has one, else the server's path."""
    if node_state_dir:
        return Path(node_state_dir).expanduser() / Path(state_dir).parent.name / str(pid)
    return Path(state_dir) / str(pid)
