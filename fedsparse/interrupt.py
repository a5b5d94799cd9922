"""Stopping a run on Ctrl-C (SIGINT) or SIGTERM: within seconds, Ray down, exit code 130 (SIGTERM: 143).

Flower's simulation engine cannot be cancelled: its worker threads wait on client actors and the
ServerApp thread waits for replies, and the interpreter joins both before it exits. So the first
signal raises `Interrupted` in the main thread (which waits in Flower's engine); on its way out
Flower's engine and `runner.run_simulation` shut Ray and its actors down; then `finish` stops the
progress bar, prints the last checkpointed round and the command that resumes the run, and ends
the process with `os._exit`. That loses nothing: metric rows are fsync'd as they are written and
checkpoints are replaced atomically. From the first signal on, log records below CRITICAL are
dropped (the teardown makes Flower's waiting threads log errors), except with `log_level=debug`.
A second signal, or a shutdown that takes longer than `SHUTDOWN_S`, ends the process at once, with
the same resume line. A repeat within `REPEAT_S` of the first is the same stop delivered twice
(`timeout -s INT` signals the process and then its whole group) and is ignored.
`forward_signals` is the parent's side (`simulations.compare`): it passes the signals on to the
run it waits for and lets that run stop itself.
"""

from __future__ import annotations

import logging
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import NoReturn

from fedsparse.config import checkpoint_round, config_from_yaml
from fedsparse.metrics.run_folder import CONFIG_FILE

SHUTDOWN_S = 15.0
REPEAT_S = 1.0
SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):
    """Raised in the main thread by SIGINT or SIGTERM while `raise_on_signals` is active.

    A BaseException, like KeyboardInterrupt, so that `except Exception` clauses let it through.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


_received = threading.Event()
_watchdog: threading.Timer | None = None
_first_at = 0.0
_entry = ""
_run_path: Path | None = None


def run_started(run_path: Path) -> None:
    """Name the run folder that the resume line points to (until the next `raise_on_signals`)."""
    global _run_path
    _run_path = run_path


def _end_now(why: str, code: int) -> NoReturn:
    print(why, resume_hint(_run_path, _entry), sep="\n", file=sys.stderr, flush=True)
    os._exit(code)


def _handler(signum: int, frame: FrameType | None) -> None:
    global _watchdog, _first_at
    if _received.is_set():
        if time.monotonic() - _first_at < REPEAT_S:
            return
        _end_now("signalled again: ended without waiting for the shutdown", 128 + signum)
    _received.set()
    _first_at = time.monotonic()
    _watchdog = threading.Timer(SHUTDOWN_S, _end_now,
                                (f"the shutdown took over {SHUTDOWN_S:.0f} s: ended without waiting",
                                 128 + signum))
    _watchdog.daemon = True
    _watchdog.start()
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        logging.disable(logging.ERROR)
    raise Interrupted(signum)


def after_ray_init() -> None:
    """Put back the SIGTERM handler that `ray.init` replaces with its own in a process that starts
    a Ray node (only while `raise_on_signals` is active; main thread)."""
    if signal.getsignal(signal.SIGINT) is _handler:
        signal.signal(signal.SIGTERM, _handler)


@contextmanager
def raise_on_signals(entry: str) -> Iterator[None]:
    """While active, SIGINT and SIGTERM raise `Interrupted`; `entry` is the module named in the
    resume command. On leaving (an `Interrupted` that was not `finish`ed included), the previous
    handlers, the logging and the no-watchdog state return."""
    global _entry, _run_path
    previous = {sig: signal.getsignal(sig) for sig in SIGNALS}
    _received.clear()
    _entry, _run_path = entry, None
    for sig in SIGNALS:
        signal.signal(sig, _handler)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if _watchdog is not None:
            _watchdog.cancel()
        logging.disable(logging.NOTSET)


@contextmanager
def forward_signals(child: subprocess.Popen) -> Iterator[list[int]]:
    """While active, SIGINT and SIGTERM do not stop this process: they are passed on to `child` (a
    run, which stops itself and prints its resume line) and recorded in the yielded list, so that
    the caller stops once the child has ended."""
    received: list[int] = []

    def forward(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        if child.poll() is None:
            child.send_signal(signum)

    previous = {sig: signal.getsignal(sig) for sig in SIGNALS}
    for sig in SIGNALS:
        signal.signal(sig, forward)
    try:
        yield received
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def resume_hint(run_path: Path | None, entry: str) -> str:
    """The line telling what was kept and how to continue."""
    if run_path is None:
        return "interrupted before the run started; nothing to resume"
    done = checkpoint_round(run_path)
    if done is None:
        return (f"interrupted; {run_path} has no checkpoint to resume from (checkpoint_every=0, "
                "or stopped before round 0 ended): start the run again")
    rounds = config_from_yaml((run_path / CONFIG_FILE).read_text(encoding="utf-8")).train.rounds
    if done >= rounds:
        return (f"interrupted after the last round ({done}) while writing the summary and plots; "
                f"metrics.jsonl and the checkpoint in {run_path} are complete")
    command = f"python -m {entry} resume={shlex.quote(str(run_path))}"
    return f"interrupted; last checkpoint: round {done}. Resume with: {command}"


def finish(e: Interrupted) -> NoReturn:
    """Stop the progress bar, print `resume_hint`, end the process with 128 + the signal number
    (SIGINT: 130, SIGTERM: 143). Ray is already down (`runner.run_simulation`)."""
    from fedsparse.metrics.progress import stop_bars

    stop_bars()
    print(resume_hint(_run_path, _entry), file=sys.stderr, flush=True)
    sys.stdout.flush()
    os._exit(128 + e.signum)
