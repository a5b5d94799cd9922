"""Injected client faults, each a pure function of (seed, round, partition) so runs stay reproducible.

- **Failure** (`client_failure_rate`): the client raises after receiving its train message (and
  after keeping the mask it carried); Flower turns the exception into an error reply, which the
  server counts as `failures.errors`.
- **Drop-out** (`client_dropout_rate`): the client trains and replies, but the reply is lost on the
  way: the server discards it on arrival, before reading its content, as if it had never come
  (`failures.dropped`). Its upload bytes are not counted (they were never received); its download
  bytes are (the train message was delivered). The client's compute is spent, as on a real device
  that drops off the network after training.
"""

from __future__ import annotations

import numpy as np

_FAILURE, _DROPOUT = 0xFA11, 0xD50B  # separate random streams for the two kinds of fault


class InjectedFailure(RuntimeError):
    """Raised by a client chosen to fail (`client_failure_rate`)."""


def _draw(seed: int, server_round: int, pid: int, stream: int) -> float:
    return float(np.random.default_rng([seed, server_round, pid, stream]).random())


def fails(seed: int, server_round: int, pid: int, rate: float) -> bool:
    """Whether client `pid` fails in `server_round` (it raises instead of replying)."""
    return rate > 0 and _draw(seed, server_round, pid, _FAILURE) < rate


def drops_out(seed: int, server_round: int, pid: int, rate: float) -> bool:
    """Whether client `pid`'s reply of `server_round` is lost before reaching the server."""
    return rate > 0 and _draw(seed, server_round, pid, _DROPOUT) < rate
