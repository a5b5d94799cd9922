"""`RoundProgress`: per-round console progress (rich bar on a terminal, else one line per round)."""

from __future__ import annotations

import sys
from types import TracebackType
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

MB = 1e6


class RoundProgress:
    """Context manager; `update(round, row)` after each round shows accuracy and cumulative MB.

    `enabled=False`, or a stdout that is not a terminal, gives one plain line per round instead of
    a rich bar.
    """

    def __init__(self, total_rounds: int, enabled: bool = True) -> None:
        self.total_rounds = total_rounds
        self._acc: float | None = None
        self._bar: Progress | None = None
        if enabled and sys.stdout.isatty():
            self._bar = Progress(
                TextColumn("round"),
                MofNCompleteColumn(),
                BarColumn(),
                TextColumn("{task.fields[info]}"),
                TimeElapsedColumn(),
            )
            self._task = self._bar.add_task("rounds", total=total_rounds, info="")

    def __enter__(self) -> RoundProgress:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._bar is not None:
            self._bar.stop()

    def update(self, round: int, row: dict[str, Any]) -> None:
        if row.get("central_accuracy") is not None:
            self._acc = row["central_accuracy"]
        parts = [f"acc={self._acc:.3f}" if self._acc is not None else "acc=-"]
        for key, label in (("cumulative_upload_bytes", "up"), ("cumulative_download_bytes", "down")):
            if row.get(key) is not None:
                parts.append(f"{label}={row[key] / MB:.1f}MB")
        if self._bar is not None:
            self._bar.update(self._task, completed=round, info=" ".join(parts))
            return
        if row.get("round_time_s") is not None:
            parts.append(f"{row['round_time_s']:.1f}s")
        print(f"round {round}/{self.total_rounds} " + " ".join(parts), flush=True)
