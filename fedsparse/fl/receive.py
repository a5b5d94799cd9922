"""A round's replies as they arrive, so the server decodes each while other clients still train."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence

from flwr.app import Message
from flwr.serverapp import Grid

PULL_INTERVAL_S = 0.02
"""Poll interval on grids that do not signal stored replies (Flower's default: 0.1 s)."""
FULL_PULL_S = 1.0
"""Where the grid signals each stored reply (`flower_patches.reply_inbox`), the loop pulls just the
replies it was told about and asks for every awaited one this often (Flower answers an expired
or undeliverable message with an error reply only when asked for it)."""


def replies_as_they_arrive(grid: Grid, messages: Sequence[Message],
                           timeout: float | None = None) -> Iterator[Message]:
    """Push `messages`, then yield each reply as soon as it is pulled, until every message has its
    reply or `timeout` seconds (None: no limit) have passed: `Grid.send_and_receive`, but streamed
    (it returns the whole list only once the last client is done, leaving the decoding of 20
    replies to the moment every client actor waits)."""
    from fedsparse.fl import flower_patches

    inbox = flower_patches.reply_inbox(grid)
    pending = set(grid.push_messages(messages))
    deadline = time.monotonic() + (math.inf if timeout is None else timeout)
    last_full = -math.inf
    while pending:
        told = inbox.take(pending) if inbox is not None else []
        if inbox is None or time.monotonic() - last_full >= FULL_PULL_S:
            ask, last_full = set(pending), time.monotonic()
        else:
            ask = set(told)
        arrived = list(grid.pull_messages(ask)) if ask else []
        answered = {m.metadata.reply_to_message_id for m in arrived}
        if inbox is not None:
            inbox.discard(answered)
        pending.difference_update(answered)
        yield from arrived
        if not pending or time.monotonic() >= deadline:
            return
        if not arrived:
            left = max(0.0, deadline - time.monotonic())
            if inbox is None:
                time.sleep(min(PULL_INTERVAL_S, left))
            else:
                inbox.wait(min(FULL_PULL_S, left))
