"""A round's replies as they arrive, so the server decodes each while other clients still train."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence

from flwr.app import Message
from flwr.serverapp import Grid

PULL_INTERVAL_S = 0.02  # poll for replies this often (Flower's simulation grid default: 0.1 s)


def replies_as_they_arrive(grid: Grid, messages: Sequence[Message], timeout: float) -> Iterator[Message]:
    """Push `messages`, then yield each reply as soon as it is pulled, until every message has its
    reply or `timeout` seconds have passed: `Grid.send_and_receive`, but streamed (it returns the
    whole list only once the last client is done, leaving the decoding of 20 replies to the
    moment every client actor waits)."""
    pending = set(grid.push_messages(messages))
    deadline = time.monotonic() + timeout
    while pending:
        arrived = list(grid.pull_messages(pending))
        pending.difference_update(m.metadata.reply_to_message_id for m in arrived)
        yield from arrived
        if not pending or time.monotonic() >= deadline:
            return
        if not arrived:
            time.sleep(PULL_INTERVAL_S)
