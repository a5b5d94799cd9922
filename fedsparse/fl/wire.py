"""Bytes on the wire: the size of a Flower message's content as it is really serialized."""

from __future__ import annotations

from flwr.app import Message
from flwr.supercore.inflatable.inflatable_object import get_all_nested_objects

ENVELOPE_BYTES = 150
"""About what the message envelope (run/node/message ids, timestamps, ttl) adds per message; it is
left out of `message_bytes` because its random ids make its length vary between runs."""


def message_bytes(message: Message) -> int:
    """Sum of the deflated sizes of every object Flower transfers for `message`'s content.

    Flower 1.41 sends a message as content-addressed objects (record dict, records, arrays, array
    chunks, each once, plus the envelope); this is the total of their serialized bodies and headers,
    envelope excluded, so the count is the same in every run of the same config and seed.
    """
    return sum(len(obj.deflate()) for obj in get_all_nested_objects(message.content).values())
