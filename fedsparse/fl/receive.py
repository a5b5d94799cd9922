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
SIGNALLED_WAIT_S = 1.0
"""Longest wait between two pulls where the grid signals each stored reply
(fedsparse.fl.link_events): the loop wakes at each reply and pulls rarely otherwise."""


def replies_as_they_arrive(grid: Grid, messages: Sequence[Message],
                           timeout: float | None = None) -> Iterator[Message]:
    """Push `messages`, then yield each reply as soon as it is pulled, until every message has its
    reply or `timeout` seconds (None: no limit) have passed: `Grid.send_and_receive`, but streamed (it returns the
    whole list only once the last client is done, leaving the decoding of 20 replies to the
    moment every client actor waits)."""
    wait = SIGNALLED_WAIT_S if link_events.signals(grid) else PULL_INTERVAL_S
    pending = set(grid.push_messages(messages))
    deadline = time.monotonic() + (math.inf if timeout is None else timeout)
    while pending:
        link_events.REPLY_STORED.clear()
        arrived = list(grid.pull_messages(pending))
        pending.difference_update(m.metadata.reply_to_message_id for m in arrived)
        yield from arrived
        if not pending or time.monotonic() >= deadline:
            return
        if not arrived:
            link_events.REPLY_STORED.wait(min(wait, max(0.0, deadline - time.monotonic())))
