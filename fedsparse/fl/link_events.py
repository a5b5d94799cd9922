"""Wake-ups from Flower's in-memory LinkState (simulation engine, flwr 1.41).

A simulation has two pollers: the engine's message extractor (fedsparse.fl.vce_queue), which
hands stored instructions to the client actors, and the server's reply loop
(fedsparse.fl.receive). Polling on a fixed tick costs half a tick of latency per hand-off on
average, twice a round, and every poll costs: a pull checks each awaited message (2.4 ms per pull
measured at 20 clients per round, 25% of a core when polling every 20 ms). `install()` makes
`InMemoryLinkState` set `INSTRUCTION_STORED` / `REPLY_STORED` whenever it stores a message, so both
wait on the event, wake at once and otherwise look rarely; on another grid, e.g. the Deployment
Engine's, where nothing sets the events, the server polls as before.

A waiter clears its event *before* looking at the state, then waits: a message stored in between
sets the event again, so no wake-up is lost.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

import flwr
from flwr.server.superlink.linkstate.in_memory_linkstate import InMemoryLinkState

INSTRUCTION_STORED = threading.Event()
REPLY_STORED = threading.Event()


def _signalling(store: Callable[..., Any], event: threading.Event) -> Callable[..., Any]:
    @functools.wraps(store)
    def wrapper(self: InMemoryLinkState, message: Any) -> Any:
        out = store(self, message)
        event.set()
        return out

    wrapper.signals = event  # type: ignore[attr-defined]
    return wrapper


def signals(grid: Any) -> bool:
    """True when `grid` is a simulation grid whose LinkState sets the events."""
    state = getattr(grid, "state", None)
    return isinstance(state, InMemoryLinkState) and hasattr(type(state).store_message_res, "signals")


def install() -> bool:
    """Make the in-memory LinkState set the events (once per process); False, and nothing
    changed, on a flwr version other than the one this was written against."""
    if not flwr.__version__.startswith("1.41."):
        return False
    for name, event in (("store_message_ins", INSTRUCTION_STORED),
                        ("store_message_res", REPLY_STORED)):
        method = getattr(InMemoryLinkState, name)
        if getattr(method, "signals", None) is not event:
            setattr(InMemoryLinkState, name, _signalling(method, event))
    return True
