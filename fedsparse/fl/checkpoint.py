"""Run checkpoints (every `checkpoint_every` rounds) and resuming a run from its folder.

`<run folder>/checkpoint/` holds:
- `tensors-r<round>.pt`: the strategy's tensors (global weights, global mask, FedAvgM velocity) as a
  plain `dict[str, Tensor]` written with `torch.save` and read back with `weights_only=True`;
- `checkpoint.json`: the round, the tensor file's name and SHA-256, and the strategy's metadata
  (mask version, the mask version each client holds, the communication ledger, FedDST's budget).

Each file is written atomically (fsync'd temp file + `os.replace`); `checkpoint.json` is written
last and names its tensor file, so it is the commit point: a crash at any moment leaves the previous
checkpoint or the new one, whole. Older tensor files are removed only after that.

Nothing random needs saving: client sampling is a pure function of (seed, round)
(`fl/sampling.py`), each client's RNG one of (seed, round, partition) (`train/client_update.py`),
injected faults one of (seed, round, partition) (`fl/faults.py`), and the initial mask (the only
seeded server-side draw) is part of the checkpoint.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import torch

from fedsparse.config import Config
from fedsparse.errors import DataError
from fedsparse.metrics.run_folder import (
    CHECKPOINT_DIR,
    CHECKPOINT_FILE,
    RunFolder,
    atomic_write_bytes,
    to_jsonable,
)

FORMAT = 1


def save_checkpoint(run: RunFolder, server_round: int, strategy: Any) -> Path:
    """Write the strategy's state after `server_round`; returns the checkpoint folder."""
    folder = run.path_for(CHECKPOINT_DIR)
    folder.mkdir(exist_ok=True)
    state = strategy.state_dict()
    tensors = {name: t.detach().cpu().contiguous() for name, t in state.pop("tensors").items()}
    buf = io.BytesIO()
    torch.save(tensors, buf)
    data = buf.getvalue()
    name = f"tensors-r{server_round:08d}.pt"
    atomic_write_bytes(folder / name, data)
    meta = {"format": FORMAT, "round": server_round, "strategy_class": type(strategy).__name__,
            "tensors": name, "sha256": hashlib.sha256(data).hexdigest(), "strategy": state}
    atomic_write_bytes(folder / CHECKPOINT_FILE,
                       (json.dumps(to_jsonable(meta), allow_nan=False) + "\n").encode())
    for old in folder.glob("tensors-r*.pt"):
        if old.name != name:
            old.unlink(missing_ok=True)
    return folder


def load_checkpoint(run_path: str | Path) -> tuple[int, dict[str, Any]]:
    """(round, strategy state for `load_state_dict`) of a run folder's checkpoint."""
    folder = Path(run_path) / CHECKPOINT_DIR
    try:
        meta = json.loads((folder / CHECKPOINT_FILE).read_text(encoding="utf-8"))
        data = (folder / meta["tensors"]).read_bytes()
    except (OSError, ValueError, KeyError) as e:
        raise DataError(f"checkpoint in {folder} cannot be read ({e})") from None
    if meta.get("format") != FORMAT or hashlib.sha256(data).hexdigest() != meta.get("sha256"):
        raise DataError(f"checkpoint in {folder} is damaged (format or SHA-256 mismatch)")
    tensors = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    state = dict(meta["strategy"])
    state["tensors"] = tensors
    return int(meta["round"]), state


def open_run_folder(cfg: Config) -> RunFolder:
    """A new run folder with `config.yaml`, or, when resuming, the run's own folder (its
    `config.yaml` rewritten only to record a changed `rounds`)."""
    if cfg.runtime.resume is None:
        run = RunFolder.create(cfg.runtime.output_dir, cfg.name, cfg.seed)
        run.write_config(cfg.to_yaml())
        return run
    run = RunFolder(Path(cfg.runtime.resume))
    run.write_config(cfg.with_(resume=None).to_yaml())
    return run
