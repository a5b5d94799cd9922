"""A cheaper message extractor for Flower's simulation engine (flwr 1.41, in-memory LinkState).

Flower's `vce_api.add_messages_to_queue` wakes every 0.1 s and calls
`InMemoryLinkState.get_message_ins(node_id, limit=1)` for every registered node; each call walks
every stored message and re-checks it (expiry, federation membership). One tick thus costs
nodes x stored messages checks: about a core's worth of the driver process at 400 nodes and 20
messages in flight, and far more at 10,000 nodes or during node set-up (one message per node).

`extract_messages` does the same work in one pass: each undelivered message is checked once and
at most one per destination node is handed to the workers and marked delivered, as before. It
wakes when the LinkState stores an instruction (`link_events`) and then looks only at
the new ones, with a full pass every `TICK_S`. (Messages already delivered are not re-checked for
expiry here; their replies, or the server's timeout, end them.) `install()` swaps it in (the package
`fedsparse.fl.flower_patches` decides whether); it runs for the in-memory state only, any other
state gets Flower's own.

The extractor is also handed the engine's node id -> partition id mapping (the `partition-id` each
node's `node_config` gets), which no public Flower API gives the ServerApp; it passes it on to the
server of the same simulation (`engine_partitions`), so that the server needs no message to every
node to learn it (fedsparse.fl.node_directory).
"""

from __future__ import annotations

import math
import threading
import time
import weakref
from queue import Queue
from typing import Any

from flwr.server.superlink.fleet.vce import vce_api
from flwr.server.superlink.linkstate.in_memory_linkstate import InMemoryLinkState
from flwr.supercore.date import now

from fedsparse.fl.flower_patches import link_events

TICK_S = 0.1
"""A full pass over every stored instruction this often (Flower's own tick)."""
_ORIGINAL = vce_api.add_messages_to_queue
_PARTITIONS: weakref.WeakKeyDictionary[InMemoryLinkState, dict[int, int]] = weakref.WeakKeyDictionary()
_PUBLISHED = threading.Condition()


def pick_messages(state: InMemoryLinkState, nodes: Any, among: list[str] | None = None) -> list[Any]:
    """At most one undelivered, still valid message per node in `nodes`, marked delivered; only
    messages whose id is in `among` (oldest first) when given, else every stored one."""
    picked: dict[int, Any] = {}
    with state.lock:
        store = state.message_ins_store
        ids = store if among is None else (i for i in among if i in store)
        waiting = [i for i in ids if store[i].metadata.delivered_at == ""]
        if not waiting:
            return []
        state._check_stored_messages(set(waiting))  # noqa: SLF001 - drops expired/invalid ones
        for msg_id in waiting:  # in arrival order
            msg = store.get(msg_id)
            if msg is None:
                continue
            dst = msg.metadata.dst_node_id
            if dst in nodes and dst not in picked:
                picked[dst] = msg
        delivered_at = now().isoformat()
        for msg in picked.values():
            msg.metadata.delivered_at = delivered_at
    return list(picked.values())


def extract_messages(state: Any, queue: Queue, nodes_mapping: dict[int, int],
                     f_stop: threading.Event) -> None:
    """Drop-in for `vce_api.add_messages_to_queue` (same arguments)."""
    if not isinstance(state, InMemoryLinkState):
        return _ORIGINAL(state, queue, nodes_mapping, f_stop)
    with _PUBLISHED:
        _PARTITIONS[state] = nodes_mapping
        _PUBLISHED.notify_all()
    last_full = -math.inf
    while not f_stop.is_set():
        new = link_events.INSTRUCTIONS.take()
        full = time.monotonic() - last_full >= TICK_S
        if full:
            last_full = time.monotonic()
        for msg in pick_messages(state, nodes_mapping, None if full else new):
            queue.put(msg)
        link_events.INSTRUCTIONS.wait(TICK_S)
    return None


def engine_partitions(grid: Any, timeout: float) -> dict[int, int] | None:
    """Node id -> partition id as the simulation engine running `grid`'s LinkState assigned them,
    waiting up to `timeout` s for its extractor to start; None at once where this process's engine
    does not run `extract_messages` on that state (another grid, engine or flwr version)."""
    state = getattr(grid, "state", None)
    if vce_api.add_messages_to_queue is not extract_messages or not isinstance(state, InMemoryLinkState):
        return None
    with _PUBLISHED:
        _PUBLISHED.wait_for(lambda: state in _PARTITIONS, timeout)
        return _PARTITIONS.get(state)


def install() -> None:
    """Use `extract_messages`, woken by `link_events`, in this process's simulation engine."""
    link_events.install()
    vce_api.add_messages_to_queue = extract_messages


def uninstall() -> None:
    """Put Flower's own extractor and LinkState store methods back."""
    vce_api.add_messages_to_queue = _ORIGINAL
    link_events.uninstall()
