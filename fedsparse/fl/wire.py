"""Bytes on the wire: the size of a Flower message as it is really serialized."""

from __future__ import annotations

from flwr.app import Message
from flwr.supercore.inflatable.inflatable_object import get_all_nested_objects


def message_bytes(message: Message) -> int:
    """Sum of the deflated sizes of every object Flower transfers for `message`.

    Flower 1.41 sends a message as content-addressed objects (message, record dict, records,
    arrays, array chunks), each once; this is the total of their serialized bodies and headers.
    """
    return sum(len(obj.deflate()) for obj in get_all_nested_objects(message).values())
