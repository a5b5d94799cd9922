"""Process helpers shared by the tests that start real runs in subprocesses."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path


def session_alive(sid: int) -> list[int]:
    """Live (non-zombie) processes of session `sid`: a run started with `start_new_session=True`
    and every process it started (Ray's included)."""
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":
            alive.append(int(stat.parent.name))
    return alive


def with_descendants(pids: list[int]) -> list[int]:
    """`pids` and every process they started, as the process tree stands now."""
    tree: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        tree.setdefault(ppid, []).append(int(stat.parent.name))
    out, todo = [], list(pids)
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += tree.get(pid, [])
    return out


def session_processes(sessions: set[int]) -> list[int]:
    """Every process whose session is one of `sessions`."""
    pids = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if os.getsid(int(proc.name)) in sessions:
                pids.append(int(proc.name))
        except OSError:
            pass
    return pids


def stop(procs: list[subprocess.Popen], targets: Callable[[], list[int]]) -> None:
    """SIGTERM, then SIGKILL, to the processes `targets()` names at each signal, waiting up to
    10 s after each for `procs` to exit; then reap `procs`."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in targets():
            try:
                os.kill(pid, sig)
            except OSError:
                pass
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(p.poll() is None for p in procs):
            time.sleep(0.2)
    for p in procs:
        p.wait(timeout=10)
