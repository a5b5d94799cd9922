"""What Flower's in-memory LinkState stored, as it stores it (simulation engine, flwr 1.41).

A simulation has two pollers: the engine's message extractor (`vce_queue`), which
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
from collections.abc import Callable
from typing import Any

from flwr.server.superlink.linkstate.in_memory_linkstate import InMemoryLinkState

from fedsparse.fl.flower_patches.inbox import Inbox


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


_HOOKS: tuple[tuple[str, Inbox, Callable[[Any], str]], ...] = (
    ("store_message_ins", INSTRUCTIONS, lambda m: m.metadata.message_id),
    ("store_message_res", REPLIES, lambda m: m.metadata.reply_to_message_id))


def install() -> None:
    """Make the in-memory LinkState fill the inboxes (a second call changes nothing)."""
    for name, inbox, key in _HOOKS:
        method = getattr(InMemoryLinkState, name)
        if getattr(method, "inbox", None) is not inbox:
            setattr(InMemoryLinkState, name, _noting(method, inbox, key))


def uninstall() -> None:
    """Put Flower's own store methods back."""
    for name, inbox, _ in _HOOKS:
        method = getattr(InMemoryLinkState, name)
        if getattr(method, "inbox", None) is inbox:
            setattr(InMemoryLinkState, name, method.__wrapped__)
