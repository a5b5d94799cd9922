"""Process helpers shared by the tests that start real runs in subprocesses."""

from __future__ import annotations

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
