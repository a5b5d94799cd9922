"""A method's own exchange with chosen clients outside the round loop (e.g. FLASH's round-0 mask
search, PruneFL's initial pruning at one client): train messages carrying the global weights,
a stage mask (positions always sent, `mask_version` -1 so that nodes do not keep it) and the
method's instructions; the replies are decoded like a round's, and both directions go to the
ledger under the given round (0 before training)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from flwr.app import ConfigRecord, Message, MessageType
from flwr.serverapp import Grid

from fedsparse.fl.payload import PayloadError, decode_extras, decode_state, encode_state
from fedsparse.fl.receive import replies_as_they_arrive
from fedsparse.fl.strategies.base import Reply, SparseFedAvg
from fedsparse.sparse.mask import Mask

log = logging.getLogger("fedsparse")


def exchange(strategy: SparseFedAvg, grid: Grid, pids: Sequence[int], instructions: dict[str, Any],
             mask: Mask | None, server_round: int = 0) -> list[Reply]:
    """Send `strategy.state` restricted to `mask` (+ its positions) with `instructions` to each of
    `pids`; return the accepted replies in partition order (RuntimeError if none is)."""
    cfg = strategy.cfg
    masked = strategy.masked if mask is not None else []
    record = encode_state(strategy.state, masked, mask, send_positions=mask is not None,
                          codec=cfg.comm.codec, value_dtype=cfg.comm.value_dtype)
    pids = sorted(set(pids))
    messages = []
    for pid in pids:
        config = ConfigRecord({"round": server_round, "mask_version": -1, **instructions})
        content = strategy.node_setup.content(pid, {"arrays": record, "config": config})
        messages.append(Message(content, dst_node_id=strategy.node_of[pid], message_type=MessageType.TRAIN))
    strategy.record_sent(server_round, pids, messages, [0] * len(pids))
    pid_of = {strategy.node_of[p]: p for p in pids}
    replies = []
    for msg in replies_as_they_arrive(grid, messages):
        pid = pid_of.get(msg.metadata.src_node_id)
        if pid is None:
            continue
        if msg.has_error():
            log.warning("round %d: client %d failed its %s exchange: %s", server_round, pid,
                        instructions.get("stage", "stage"), msg.error.reason)
            continue
        strategy.node_setup.confirm(pid)
        strategy.record_received(server_round, pid, msg, 0)
        try:
            state, client_mask, _ = decode_state(msg.content["arrays"], strategy.shapes, masked, mask,
                                                 value_dtype=cfg.comm.value_dtype)
        except PayloadError as e:
            log.warning("round %d: rejected the reply of client %d: %s", server_round, pid, e)
            continue
        metrics = dict(msg.content["metrics"])
        examples = float(metrics["num-examples"])
        replies.append(Reply(pid, state, client_mask, examples, strategy.aggregation_weight(examples),
                             metrics, decode_extras(msg.content["arrays"])))
    extra = strategy.round_info.setdefault("extra", {})
    extra["stage_client_time_s"] = extra.get("stage_client_time_s", 0.0) + sum(
        float(r.metrics.get("train_time_s", 0.0)) for r in replies)
    if not replies:
        raise RuntimeError(f"no client answered the {instructions.get('stage', 'stage')} exchange")
    return sorted(replies, key=lambda r: r.pid)
