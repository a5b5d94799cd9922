"""`RunLogger`: the interface of experiment loggers, itself the `none` logger; `open_logger`."""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, Any

from fedsparse.metrics.loggers.registry import LOGGERS
from fedsparse.metrics.run_folder import RunFolder

if TYPE_CHECKING:
    from fedsparse.config import Config


@LOGGERS.register("none")
class RunLogger:
    """Receives each metrics row right after metrics.jsonl records it; this base records nothing.

    A logger is opened once metrics.jsonl holds the rows the run starts from (after a resume:
    the rows up to the checkpoint, later ones dropped) and must end up showing exactly
    metrics.jsonl's rows: a resumed run must not show a round twice.
    """

    def __init__(self, run: RunFolder, cfg: Config) -> None:
        self.run = run
        self.cfg = cfg

    def log(self, row: dict[str, Any]) -> None:
        """Record one round's row (called as each round ends)."""

    def close(self) -> None:
        """Flush and release what the logger holds."""

    def __enter__(self) -> RunLogger:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def open_logger(cfg: Config, run: RunFolder) -> RunLogger:
    """The logger `cfg.runtime.logger` names, opened on `run` (use it as a context manager)."""
    return LOGGERS.get(cfg.runtime.logger)(run, cfg)
