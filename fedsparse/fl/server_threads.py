"""Torch threads of the server process: one while the clients train, every core while they wait.

In a simulation the server shares the machine's cores with the client actors. While a round runs
it only decodes replies, small ops, yet torch's OpenMP helper thread in the driver used 9% of a
core during a 400-round run, competing with the actors; evaluation and the final averaging run
while every actor waits for the next round, and then all cores are free."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def rounds_running() -> Iterator[None]:
    """One torch thread inside (the round loop), the previous setting restored after."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@contextmanager
def clients_waiting() -> Iterator[None]:
    """Every core inside (evaluation, averaging), the previous setting restored after."""
    previous = torch.get_num_threads()
    torch.set_num_threads(os.cpu_count() or 1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
