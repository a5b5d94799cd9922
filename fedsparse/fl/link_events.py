"""What Flower's in-memory LinkState stored, as it stores it (simulation engine, flwr 1.41).

A simulation has two pollers: the engine's message extractor (fedsparse.fl.vce_queue), which
hands stored instructions to the client actors, and the server's reply loop
(fedsparse.fl.receive). Polling on a fixed tick costs half a tick of latency per hand-off, and
every poll re-checks every awaited message: 2.4 ms per reply pull at 20 clients per round (a
quarter of a core when pulling every 20 ms), and nodes x messages work while 10,000 nodes are set
up. `install()` makes `InMemoryLinkState` note the id of each instruction it stores (in
`INSTRUCTIONS`) and of the instruction each stored reply answers (in `REPLIES`), and wake whoever
waits on that inbox, so each poller wakes at once and looks only at what is new. Their tick stays
as a rare full pass; on another grid, e.g. the Deployment Engine's, nothing fills the inboxes and
the server polls as before.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterable
from typing import Any

import flwr
from flwr.server.superlink.linkstate.in_memory_linkstate import InMemoryLinkState


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


INSTRUCTIONS = Inbox()
REPLIES = Inbox()


def _noting(store: Callable[..., Any], inbox: Inbox, key: Callable[[Any], str]) -> Callable[..., Any]:
    @functools.wraps(store)
    def wrapper(self: InMemoryLinkState, message: Any) -> Any:
        out = store(self, message)
        if out is not None:
            inbox.put(key(message))
        return out

    wrapper.inbox = inbox  # type: ignore[attr-defined]
    return wrapper


def signals(grid: Any) -> bool:
    """True when `grid` is a simulation grid whose LinkState fills the inboxes."""
    state = getattr(grid, "state", None)
    return isinstance(state, InMemoryLinkState) and hasattr(type(state).store_message_res, "inbox")


def install() -> bool:
    """Make the in-memory LinkState fill the inboxes (once per process); False, and nothing
    changed, on a flwr version other than the one this was written against."""
    if not flwr.__version__.startswith("1.41."):
        return False
    hooks: Iterable[tuple[str, Inbox, Callable[[Any], str]]] = (
        ("store_message_ins", INSTRUCTIONS, lambda m: m.metadata.message_id),
        ("store_message_res", REPLIES, lambda m: m.metadata.reply_to_message_id))
    for name, inbox, key in hooks:
        method = getattr(InMemoryLinkState, name)
        if getattr(method, "inbox", None) is not inbox:
            setattr(InMemoryLinkState, name, _noting(method, inbox, key))
    return True
