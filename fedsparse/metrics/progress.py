"""`RoundProgress`: per-round console progress (rich bar on a terminal, else one line per round)."""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import Any

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

MB = 1e6

_LIVE: set[Progress] = set()


def stop_bars() -> None:
    """Stop every live bar (an interrupted run: restores the cursor and the console streams)."""
    for bar in list(_LIVE):
        bar.stop()
        _LIVE.discard(bar)


def duration(seconds: float) -> str:
    """`1h02m`, `3m05s`, `42s`."""
    s = round(seconds)
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


class RoundProgress:
    """Context manager; `update(round, row)` after each round shows the last evaluated accuracy
    (`acc=0.351@r390`: central test accuracy of round 390), cumulative MB, elapsed and remaining
    time.

    `enabled=False`, or a stdout that is not a terminal, gives one plain line per round instead of
    a rich bar, with the round's time and the estimated time left: from this process's rounds
    after its first, which also holds the nodes' setup (their data and model loading), once there
    are any. `done`: rounds already run (a resumed run).
    """

    def __init__(self, total_rounds: int, enabled: bool = True, done: int = 0) -> None:
        self.total_rounds = total_rounds
        self._done = done
        self._acc: tuple[float, int] | None = None
        self._bar: Progress | None = None
        self._t0 = time.perf_counter()
        self._t1: float | None = None  # when this process's first round ended
        if enabled and sys.stdout.isatty():
            self._bar = Progress(
                TextColumn("round"),
                MofNCompleteColumn(),
                BarColumn(),
                TextColumn("{task.fields[info]}"),
                TimeElapsedColumn(),
                TextColumn("left"),
                TimeRemainingColumn(),
            )
            self._task = self._bar.add_task("rounds", total=total_rounds, completed=done, info="")

    def __enter__(self) -> RoundProgress:
        self._t0 = time.perf_counter()
        if self._bar is not None:
            self._bar.start()
            _LIVE.add(self._bar)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._bar is not None:
            self._bar.stop()
            _LIVE.discard(self._bar)

    def update(self, round: int, row: dict[str, Any]) -> None:
        if row.get("central_accuracy") is not None:
            self._acc = (row["central_accuracy"], round)
        parts = [f"acc={self._acc[0]:.3f}@r{self._acc[1]}" if self._acc is not None else "acc=-"]
        for key, label in (("cumulative_upload_bytes", "up"), ("cumulative_download_bytes", "down")):
            if row.get(key) is not None:
                parts.append(f"{label}={row[key] / MB:.1f}MB")
        if self._bar is not None:
            self._bar.update(self._task, completed=round, info=" ".join(parts))
            return
        if row.get("round_time_s") is not None:
            parts.append(f"{row['round_time_s']:.1f}s")
        if round > self._done and round < self.total_rounds:
            now = time.perf_counter()
            if self._t1 is None:
                self._t1 = now
                per_round = (now - self._t0) / (round - self._done)
            else:
                per_round = (now - self._t1) / (round - self._done - 1)
            parts.append(f"left={duration(per_round * (self.total_rounds - round))}")
        print(f"round {round}/{self.total_rounds} " + " ".join(parts), flush=True)
