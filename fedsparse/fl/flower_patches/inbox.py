"""Message ids in the order they were stored, and an event set when one arrives (no Flower code)."""

from __future__ import annotations

import threading
from collections.abc import Iterable


class Inbox:
    """Message ids in the order they were stored, and an event set when one arrives.

    A waiter takes what is there *before* it waits: an id stored in between sets the event
    again, so no wake-up is lost."""

    def __init__(self) -> None:
        self.stored = threading.Event()
        self._ids: dict[str, int] = {}  # id -> arrival number
        self._count = 0
        self._lock = threading.Lock()

    def put(self, message_id: str) -> None:
        with self._lock:
            self._count += 1
            self._ids[message_id] = self._count
        self.stored.set()

    def take(self, among: set[str] | None = None) -> list[str]:
        """Remove and return the stored ids (only those in `among`, when given), oldest first."""
        with self._lock:
            self.stored.clear()
            if among is None:
                out, self._ids = list(self._ids), {}
                return out
            if len(self._ids) <= len(among):
                out = [i for i in self._ids if i in among]
            else:
                out = sorted((i for i in among if i in self._ids), key=self._ids.__getitem__)
            for i in out:
                del self._ids[i]
            return out

    def discard(self, message_ids: Iterable[str]) -> None:
        """Forget `message_ids` (found by a full pass) without touching the event."""
        with self._lock:
            for i in message_ids:
                self._ids.pop(i, None)

    def wait(self, timeout: float) -> bool:
        return self.stored.wait(timeout)
