"""Which Flower node holds which partition: partition id -> node id, without a message to every
node where the engine can say.

A node's partition is its `node_config["partition-id"]`. Flower's simulation engine gives the i-th
of the `num_supernodes` nodes it registers `partition-id = i`; node ids are random and
`Grid.get_node_ids()` is an unordered set, so no public API gives the ServerApp that mapping.
Where this process runs the engine with fedsparse's message extractor (the Flower patches,
`runner.run_simulation`), the extractor is handed the engine's own mapping and passes it on
(`flower_patches.engine_partitions`): no message at all, whatever the number of nodes. Anywhere
else (the Deployment Engine, where each SuperNode is started with its own
`--node-config "partition-id=i ..."`; `flwr run` on a local simulation; the patches off)
the server asks every node once (`query.partition`: an empty message, answered with the node's
partition id). Those transfers are the engine's cost of finding its nodes, not the method's: they
go to the directory's own ledger (`discovery`, reported as `node_discovery` in summary.json), so a
run's metric rows are the same on every engine and with the patches on or off.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping

from flwr.app import Message, MessageType, RecordDict
from flwr.serverapp import Grid

from fedsparse.comm import CommLedger
from fedsparse.fl.receive import replies_as_they_arrive
from fedsparse.fl.wire import message_bytes, outgoing_bytes

NODE_WAIT_S = 600.0
"""Bound on waiting for the nodes to connect (or the engine to start)."""
PROBE_TIMEOUT_S = 3600.0
"""Bound on waiting for every node's answer to `query.partition`."""
PROBE = f"{MessageType.QUERY}.partition"

Record = Callable[[int, int, str, int], None]
"""(round, partition id, "up"/"down", bytes): where the transfers of `query.partition` go."""


def find_nodes(grid: Grid, num_clients: int, record: Record) -> dict[int, int]:
    """Partition id -> node id of the `num_clients` nodes (partition ids must be exactly
    0..num_clients-1: one node per partition)."""
    from fedsparse.fl import flower_patches

    deadline = time.monotonic() + NODE_WAIT_S
    engine = flower_patches.engine_partitions(grid, NODE_WAIT_S)
    if engine is not None:
        node_of = {pid: nid for nid, pid in engine.items()}
    else:
        while len(node_ids := list(grid.get_node_ids())) < num_clients:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {len(node_ids)} of num_clients={num_clients} nodes connected")
            time.sleep(0.5)
        node_of = _ask_nodes(grid, node_ids, record)
    if len(node_of) != num_clients or sorted(node_of) != list(range(num_clients)):
        raise RuntimeError(f"nodes report partition ids {sorted(node_of)[:10]}...; expected "
                           f"0..{num_clients - 1} (start one node per partition)")
    return node_of


def _ask_nodes(grid: Grid, node_ids: list[int], record: Record) -> dict[int, int]:
    """Every node's answer to `query.partition`, as partition id -> node id."""
    messages = [Message(RecordDict(), dst_node_id=nid, message_type=PROBE) for nid in node_ids]
    down = dict(zip(node_ids, outgoing_bytes(messages)))
    node_of: dict[int, int] = {}
    for reply in replies_as_they_arrive(grid, messages, PROBE_TIMEOUT_S):
        if reply.has_error():
            raise RuntimeError(f"a node failed to report its partition: {reply.error.reason}")
        pid, nid = int(reply.content["metrics"]["partition-id"]), reply.metadata.src_node_id
        if pid in node_of:
            raise RuntimeError(f"nodes {node_of[pid]} and {nid} both report partition id {pid}")
        node_of[pid] = nid
        record(0, pid, "down", down[nid])
        record(0, pid, "up", message_bytes(reply))
    return node_of


class NodeDirectory(Mapping[int, int]):
    """Partition id -> node id, found (`find_nodes`) on first use, so that the server's own
    start-up work runs while the engine starts its client actors."""

    def __init__(self, grid: Grid, num_clients: int) -> None:
        self.discovery = CommLedger()
        """This session's `query.partition` transfers (none where the engine says)."""
        self._find = lambda: find_nodes(grid, num_clients, self.discovery.record)
        self._node_of: dict[int, int] | None = None

    def resolve(self) -> dict[int, int]:
        if self._node_of is None:
            self._node_of = self._find()
        return self._node_of

    def __getitem__(self, pid: int) -> int:
        return self.resolve()[pid]

    def __iter__(self) -> Iterator[int]:
        return iter(self.resolve())

    def __len__(self) -> int:
        return len(self.resolve())
