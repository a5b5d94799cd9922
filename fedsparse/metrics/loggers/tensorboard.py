"""`logger=tensorboard`: TensorBoard event files under `<run>/tensorboard/`, one point per round."""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING, Any

from fedsparse.metrics.loggers.base import RunLogger
from fedsparse.metrics.loggers.registry import LOGGERS
from fedsparse.metrics.run_folder import RunFolder

if TYPE_CHECKING:
    from fedsparse.config import Config

TENSORBOARD_DIR = "tensorboard"

# metrics.jsonl key -> TensorBoard tag (step = round)
TAGS = {
    "central_accuracy": "accuracy/central",
    "client_accuracy": "accuracy/client_mean",
    "client_accuracy_std": "accuracy/client_std",
    "client_accuracy_min": "accuracy/client_min",
    "train_loss": "loss/train",
    "central_loss": "loss/central_test",
    "upload_bytes": "bytes/upload",
    "download_bytes": "bytes/download",
    "cumulative_upload_bytes": "bytes/cumulative_upload",
    "cumulative_download_bytes": "bytes/cumulative_download",
    "density": "mask/density",
    "mask_changes": "mask/changes",
    "round_time_s": "time/round_s",
    "wall_time_s": "time/wall_s",
}


@LOGGERS.register("tensorboard")
class TensorBoardLogger(RunLogger):
    """Scalars of each row (TAGS) and the config as text, via torch's SummaryWriter.

    Opening it rewrites `<run>/tensorboard/` from metrics.jsonl, so after a resume the event
    files hold each round once, exactly as metrics.jsonl does. Each round is flushed to disk.
    """

    def __init__(self, run: RunFolder, cfg: Config) -> None:
        super().__init__(run, cfg)
        from torch.utils.tensorboard import SummaryWriter  # imports tensorboard: seconds, only here

        folder = run.path_for(TENSORBOARD_DIR)
        if folder.exists():
            shutil.rmtree(folder)
        self.writer = SummaryWriter(log_dir=str(folder))
        config = "\n".join(f"    {line}" for line in cfg.to_yaml().splitlines())  # markdown code
        self.writer.add_text("config", config, global_step=0)
        for row in run.read_metrics():
            self._add(row)
        self.writer.flush()

    def log(self, row: dict[str, Any]) -> None:
        self._add(row)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()

    def _add(self, row: dict[str, Any]) -> None:
        for key, tag in TAGS.items():
            if row.get(key) is not None:
                self.writer.add_scalar(tag, row[key], global_step=row["round"])
