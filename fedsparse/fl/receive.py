"""A round's replies as they arrive, so the server decodes each while other clients still train."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence

from flwr.app import Message
from flwr.serverapp import Grid

from fedsparse.fl import link_events

PULL_INTERVAL_S = 0.02
"""Poll interval on grids that do not signal stored replies (Flower's default: 0.1 s)."""
FULL_PULL_S = 1.0
"""Where the grid signals each stored reply (fedsparse.fl.link_events), the loop pulls just the
replies it was told about and asks for every awaited one this often (Flower answers an expired
or undeliverable message with an error reply only when asked for it)."""


def replies_as_they_arrive(grid: Grid, messages: Sequence[Message],
                           timeout: float | None = None) -> Iterator[Message]:
    """Push `messages`, then yield each reply as soon as it is pulled, until every message has its
    reply or `timeout` seconds (None: no limit) have passed: `Grid.send_and_receive`, but streamed
    (it returns the whole list only once the last client is done, leaving the decoding of 20
    replies to the moment every client actor waits)."""
    signalled = link_events.signals(grid)
    inbox = link_events.REPLIES
    pending = set(grid.push_messages(messages))
    deadline = time.monotonic() + (math.inf if timeout is None else timeout)
    last_full = -math.inf
    while pending:
        told = inbox.take(pending)
        if not signalled or time.monotonic() - last_full >= FULL_PULL_S:
            ask, last_full = set(pending), time.monotonic()
        else:
            ask = set(told)
        arrived = list(grid.pull_messages(ask)) if ask else []
        answered = {m.metadata.reply_to_message_id for m in arrived}
        inbox.discard(answered)
        pending.difference_update(answered)
        yield from arrived
        if not pending or time.monotonic() >= deadline:
            return
        if not arrived:
            wait = FULL_PULL_S if signalled else PULL_INTERVAL_S
            inbox.wait(min(wait, max(0.0, deadline - time.monotonic())))
