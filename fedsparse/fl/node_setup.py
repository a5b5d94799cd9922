"""A node's setup: what it needs before it can act on an instruction, sent with its first one.

The setup is the record `setup` of a message: the run's resolved config as YAML and, when the
server checkpoints, `state_dir` (where nodes keep their state, fedsparse.fl.node_state). The server
adds it to the content of every message to a node that may lack it, rather than sending it to
every node before round 1, so start-up does not grow with the number of clients; the node keeps it
in its `context.state` (fedsparse.fl.client_app).

A node holds the setup once it has answered a message that carried it with a reply that is not an
error (Flower keeps a node's context only when its ClientApp returns). Two views of who holds it:

- `held`, the run's, checkpointed with the strategy: the setup bytes of a message to a partition not
  in it are counted in that message's round, with the rest of the message;
- `here`, this session's nodes': a message carries the setup unless its partition is in it. A
  resumed run starts with none (a restart loses the nodes' `context.state`), so it sends the setup
  again to partitions the run counts as holding it: those bytes are the restart's own cost
  (`resent`, reported in `restarts.json`), not the round's, and the resumed run's rows equal an
  uninterrupted run's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict

from fedsparse.comm import CommLedger
from fedsparse.fl.wire import outgoing_sizes

SETUP = "setup"
"""The name of the setup record in a message's content."""


class NodeSetup:
    """The setup record and who holds it (see the module docstring)."""

    def __init__(self, yaml_text: str, state_dir: str | None = None) -> None:
        self.record = ConfigRecord({"yaml": yaml_text, **({"state_dir": state_dir} if state_dir else {})})
        self.held: set[int] = set()
        self.here: set[int] = set()
        self.resent = CommLedger()

    def content(self, pid: int,
                records: Mapping[str, ArrayRecord | ConfigRecord | MetricRecord]) -> RecordDict:
        """A message's content for partition `pid`: `records`, plus the setup if its node may lack it."""
        if pid in self.here:
            return RecordDict(dict(records))
        return RecordDict({**records, SETUP: self.record})

    def confirm(self, pid: int) -> None:
        """Partition `pid`'s node answered (not with an error): it holds the setup."""
        self.held.add(pid)
        self.here.add(pid)

    def record_sent(self, ledger: CommLedger, server_round: int, pids: Sequence[int],
                    messages: Sequence[Message], reference_bits: Sequence[int]) -> None:
        """Ledger entries of the messages about to go to `pids` (sizes as serialized); a setup sent
        again after a restart goes to `resent` instead."""
        for pid, (size, setup), ref in zip(pids, outgoing_sizes(messages, SETUP), reference_bits):
            if setup and pid in self.held:
                self.resent.record(server_round, pid, "down", setup)
                size -= setup
            ledger.record(server_round, pid, "down", size, ref)

    def state_dict(self) -> list[int]:
        """The run's view (`held`), for a checkpoint."""
        return sorted(self.held)

    def load_state_dict(self, held: Iterable[int]) -> None:
        """Restore `held`; this session's nodes hold nothing yet."""
        self.held = {int(p) for p in held}
