"""`SparseFedAvg`: a Flower strategy whose global model is a (possibly) sparse state on the server
device; clients get their own messages carrying only active values, and the mask only when theirs
is out of date. Every other strategy is a small subclass."""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from flwr.app import ArrayRecord, ConfigRecord, Message, MessageType, MetricRecord
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Strategy

from fedsparse.comm import CommLedger, reference_download_bits, reference_upload_bits
from fedsparse.experiment import Experiment
from fedsparse.fl import faults
from fedsparse.fl.node_setup import NodeSetup
from fedsparse.fl.payload import (PayloadError, decode_extras, decode_state, encode_state, float_state,
                                  with_extras)
from fedsparse.fl.sampling import sample_clients
from fedsparse.fl.server_threads import clients_waiting
from fedsparse.fl.strategies.registry import strategy_options
from fedsparse.fl.wire import message_bytes
from fedsparse.sparse.aggregate import sparse_average
from fedsparse.sparse.initial_mask import InputSelection
from fedsparse.sparse.mask import Mask

log = logging.getLogger("fedsparse")

STANDARD_CLIENT_METRICS = ("partition-id", "num-examples", "train_loss", "mask_changes", "train_time_s")
"""Metrics every reply carries; any other (a method's `ClientResult.metrics`) is summed over the
round's clients into the row as `client_<name>`."""


@dataclass(frozen=True)
class Reply:
    """One accepted client reply, decoded: its state (zeros outside its mask), its mask, its weight
    in the average, its metrics and the arrays its method added (`extras`)."""

    pid: int
    state: dict[str, torch.Tensor]
    mask: Mask | None
    num_examples: float
    weight: float
    metrics: dict[str, Any]
    extras: dict[str, np.ndarray]


@dataclass(frozen=True)
class _HeldMask:
    """The global mask as replies are checked against it: on the CPU, its active count (a reply's
    budget) and density, computed once per round rather than once per reply."""

    mask: Mask | None
    active: int | None
    density: float

    @classmethod
    def of(cls, mask: Mask | None, budget: int | None = None) -> _HeldMask:
        if mask is None:
            return cls(None, None, 1.0)
        return cls(mask.to("cpu"), mask.num_active() if budget is None else budget, mask.density())


class SparseFedAvg(Strategy):
    """FedAvg over the support of a global mask (dense when the strategy is not sparse)."""

    def __init__(self, exp: Experiment, device: torch.device, node_of: Mapping[int, int]) -> None:
        self.exp = exp
        self.cfg = exp.cfg
        self.device = device
        self.node_of = node_of  # partition id -> node id (fedsparse.fl.node_directory)
        self.node_setup = NodeSetup(self.cfg.wire_yaml())  # the server replaces it with its run's
        self.masked = exp.masked_names
        model = exp.new_model()
        self.state = {n: t.to(device) for n, t in float_state(model).items()}
        self.shapes = {n: t.shape for n, t in self.state.items()}
        self.mask: Mask | None = None
        self.mask_version = 0
        self.client_mask_version: dict[int, int] = {}
        self._sent_version: dict[int, int] = {}
        self.ledger = CommLedger()
        self.round_info: dict[str, Any] = {}
        self.replies: list[Reply] = []  # this round's accepted replies, in partition order
        self.input_selection: InputSelection | None = None  # set with the initial mask
        self.options = strategy_options(self.cfg)  # its `strategy_options` (NoOptions if none)

    # ---------------------------------------------------------------- hooks for subclasses
    def initialize(self, grid: Grid) -> None:
        """Set up before round 1 (e.g. choose the initial mask). Dense strategies do nothing."""

    def client_instructions(self, server_round: int) -> dict[str, Any]:
        """Extra per-round settings sent to clients."""
        return {"proximal_mu": float(self.cfg.train.fedprox.proximal_mu or 0.0)}

    def server_update(self, server_round: int, average: dict[str, torch.Tensor],
                      union: Mask | None) -> None:
        """Turn the clients' average into the new global state (FedAvg: adopt it). The round's
        replies, one by one, are in `self.replies`."""
        self.state = average

    def average(self, states: list[dict[str, torch.Tensor]], masks: list[Mask], weights: list[float]
                ) -> tuple[dict[str, torch.Tensor], Mask]:
        """(weighted average, union of the client masks): each masked coordinate averaged over the
        clients holding it (fedsparse.sparse.aggregate.sparse_average)."""
        return sparse_average(states, masks, weights, self.masked)

    def download_extras(self, server_round: int, pid: int) -> dict[str, np.ndarray]:
        """Arrays of the method's own to send client `pid` with its train message."""
        return {}

    def reply_mask(self) -> Mask | None:
        """The mask a reply without positions is decoded with (the global mask; a method whose
        clients upload a known part of it returns that part)."""
        return self.mask

    def reply_budget(self) -> int | None:
        """The most active weights a reply may carry (None: the reply mask's active count)."""
        return None

    def eval_state(self) -> dict[str, torch.Tensor]:
        """The weights the server evaluates (the global state; a reparameterised method maps it)."""
        return self.state

    # ---------------------------------------------------------------- helpers
    def aggregation_weight(self, num_examples: float) -> float:
        """A reply's weight in the average: its sample count, or (`aggregation_weight=batches`,
        the FedDST reference's `train_size()`) its number of local minibatches."""
        if self.cfg.train.aggregation_weight == "batches":
            return float(math.ceil(num_examples / self.cfg.train.batch_size))
        return num_examples

    @property
    def n_masked(self) -> int:
        return sum(int(np.prod(self.shapes[n])) for n in self.masked)

    @property
    def n_dense(self) -> int:
        return sum(int(np.prod(s)) for n, s in self.shapes.items() if n not in self.masked)

    def density(self) -> float:
        return self.mask.density() if self.mask is not None else 1.0

    def set_mask(self, mask: Mask) -> None:
        """Adopt `mask` as the global mask (new version if it differs) and zero pruned weights."""
        mask = mask.to(self.device)
        if self.mask is None or mask != self.mask:
            self.mask_version += 1
        self.mask = mask
        for n in self.masked:
            self.state[n] = self.state[n] * mask[n]

    def record_received(self, server_round: int, pid: int, msg: Message, reference_bits: int) -> None:
        """Ledger entry of a reply that arrived from `pid` (its size as serialized)."""
        self.ledger.record(server_round, pid, "up", message_bytes(msg), reference_bits)

    def record_sent(self, server_round: int, pids: list[int], messages: list[Message],
                    refs: list[int]) -> None:
        """Ledger entries of the messages about to go to `pids` (sizes as serialized)."""
        self.node_setup.record_sent(self.ledger, server_round, pids, messages, refs)

    # ---------------------------------------------------------------- checkpointing
    def state_dict(self) -> dict[str, Any]:
        """What a resumed run needs to continue exactly: `tensors` (global weights `state/<name>`,
        global mask `mask/<name>`) and JSON-serialisable metadata (mask version, the version each
        client holds, the clients that hold the setup, the communication ledger). Node ids are not
        kept: they change on restart."""
        tensors = {f"state/{n}": t.detach().cpu() for n, t in self.state.items()}
        if self.mask is not None:
            tensors.update({f"mask/{n}": m.cpu() for n, m in self.mask.items()})
        return {"tensors": tensors, "mask_version": self.mask_version,
                "client_mask_version": {str(p): v for p, v in sorted(self.client_mask_version.items())},
                "client_setup": self.node_setup.state_dict(),
                "ledger": self.ledger.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a `state_dict()` (ValueError if its tensors do not fit this model)."""
        tensors = state["tensors"]
        weights = {n[len("state/"):]: t for n, t in tensors.items() if n.startswith("state/")}
        masks = {n[len("mask/"):]: t for n, t in tensors.items() if n.startswith("mask/")}
        if set(weights) != set(self.shapes) or any(weights[n].shape != s for n, s in self.shapes.items()):
            raise ValueError("checkpoint weights do not fit the model")
        if set(masks) != (set(self.masked) if masks else set()) or any(
                masks[n].shape != self.shapes[n] or masks[n].dtype != torch.bool for n in masks):
            raise ValueError("checkpoint mask does not fit the model's masked tensors")
        self.state = {n: weights[n].to(self.device) for n in self.shapes}
        self.mask = Mask({n: masks[n].to(self.device) for n in self.masked}) if masks else None
        self.mask_version = int(state["mask_version"])
        self.client_mask_version = {int(p): int(v) for p, v in state["client_mask_version"].items()}
        # checkpoints written before the setup travelled with a node's first message: every
        # node got it before round 1
        self.node_setup.load_state_dict(state.get("client_setup", range(self.cfg.data.num_clients)))
        self.ledger.load_state_dict(state["ledger"])

    # ---------------------------------------------------------------- Flower Strategy API
    def configure_train(self, server_round: int, arrays: ArrayRecord | None, config: ConfigRecord,
                        grid: Grid) -> Iterable[Message]:
        draws = Counter(sample_clients(self.cfg.seed, server_round, range(self.cfg.data.num_clients),
                                       self.cfg.train.clients_per_round,
                                       replace=self.cfg.train.sample_with_replacement))
        pids = sorted(draws)  # a client drawn twice gets one message and counts twice
        encoded: dict[bool, ArrayRecord] = {}
        messages, refs = [], []
        instructions = self.client_instructions(server_round)
        density = self.density()
        for pid in pids:
            send_mask = bool(self.masked) and self.client_mask_version.get(pid) != self.mask_version
            if send_mask not in encoded:
                encoded[send_mask] = encode_state(self.state, self.masked, self.mask,
                                                  send_positions=send_mask, codec=self.cfg.comm.codec,
                                                  value_dtype=self.cfg.comm.value_dtype)
            arrays = with_extras(encoded[send_mask], self.download_extras(server_round, pid))
            cfg = ConfigRecord({"round": server_round, "mask_version": self.mask_version,
                                **dict(config), **instructions})
            msg = Message(self.node_setup.content(pid, {"arrays": arrays, "config": cfg}),
                          dst_node_id=self.node_of[pid], message_type=MessageType.TRAIN)
            ref = reference_download_bits(self.n_masked, self.n_dense, density,
                                          mask_changed=send_mask and pid in self.client_mask_version,
                                          first_round=server_round == 1)
            refs.append(ref)
            self._sent_version[pid] = self.mask_version
            messages.append(msg)
        self.record_sent(server_round, pids, messages, refs)
        self.round_info = {"clients": pids, "draws": dict(draws)}
        return messages

    def _decode_reply(self, server_round: int, pid: int, reply: Message, held: _HeldMask) -> Reply:
        """Decode and check the reply of client `pid`; PayloadError (or KeyError/TypeError/
        ValueError for malformed records) rejects it."""
        metrics = reply.content["metrics"]
        if int(metrics["partition-id"]) != pid:
            raise PayloadError(f"reply from partition {pid} claims partition-id {metrics['partition-id']}")
        for key in ("num-examples", "train_loss"):
            value = float(metrics[key])
            if not math.isfinite(value) or (key == "num-examples" and value <= 0):
                raise PayloadError(f"metric {key}={value} is invalid")
        state, mask, sent = decode_state(reply.content["arrays"], self.shapes, self.masked,
                                         held.mask, value_dtype=self.cfg.comm.value_dtype,
                                         max_active=held.active)
        extras = decode_extras(reply.content["arrays"])
        ref = reference_upload_bits(self.n_masked, self.n_dense, held.density, readjusted=sent,
                                    sparsity=self.cfg.mask.sparsity)
        ref += sum(8 * a.nbytes for a in extras.values())  # a method's own arrays as they are
        self.record_received(server_round, pid, reply, ref)
        self.client_mask_version[pid] = self._sent_version[pid]  # the client now holds that mask
        examples = float(metrics["num-examples"])
        return Reply(pid, state, mask, examples,
                     self.aggregation_weight(examples) * self.round_info["draws"][pid], dict(metrics), extras)

    def aggregate_train(self, server_round: int, replies: Iterable[Message]
                        ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        t_last = time.perf_counter()  # aggregate_s: the server's time after the last reply
        received, failures = [], {"errors": 0, "rejected": 0, "dropped": 0}
        sampled, heard = set(self.round_info["clients"]), set()
        pid_of = {self.node_of[pid]: pid for pid in sampled}
        held = _HeldMask.of(self.reply_mask(), self.reply_budget())
        for reply in replies:  # decoded as they arrive when `replies` streams them
            t_last = time.perf_counter()
            # the sender comes from the envelope (the node the message went to), not the content
            pid = pid_of.get(reply.metadata.src_node_id)
            if pid not in sampled or pid in heard:
                failures["rejected"] += 1
                log.warning("round %d: rejected a reply from node %s (not sampled, or a duplicate)",
                            server_round, reply.metadata.src_node_id)
                continue
            heard.add(pid)
            if faults.drops_out(self.cfg.seed, server_round, pid, self.cfg.runtime.client_dropout_rate):
                failures["dropped"] += 1  # lost on the way: never read, its bytes never received
                continue
            if reply.has_error():
                failures["errors"] += 1
                log.warning("round %d: client error: %s", server_round, reply.error.reason)
                continue
            self.node_setup.confirm(pid)  # its ClientApp returned: the node kept its context
            try:
                received.append(self._decode_reply(server_round, pid, reply, held))
            except (PayloadError, KeyError, TypeError, ValueError) as e:
                failures["rejected"] += 1
                self.record_received(server_round, pid, reply, 0)  # its bytes did arrive
                log.warning("round %d: rejected the reply of client %d: %s", server_round, pid, e)
        received.sort(key=lambda r: r.pid)  # reduce in partition order, whatever the arrival order
        failures["missing"] = len(sampled - heard)
        self.round_info["failures"] = failures
        metrics: dict[str, float] = {}
        if received:
            dev = self.device
            self.replies = [dataclasses.replace(
                r, state={n: t.to(dev) for n, t in r.state.items()},
                mask=r.mask.to(dev) if self.masked else Mask({})) for r in received]
            weights = [r.weight for r in self.replies]
            old_mask = self.mask
            with clients_waiting():
                average, union = self.average([r.state for r in self.replies],
                                              [r.mask for r in self.replies], weights)
                self.server_update(server_round, average, union if self.masked else None)
            self.replies = []
            draws = self.round_info["draws"]
            client_metrics = [r.metrics for r in received]
            total = sum(weights)
            metrics = {"train_loss": sum(m["train_loss"] * w for m, w in zip(client_metrics, weights)) / total,
                       "num-examples": sum(r.num_examples * draws[r.pid] for r in received),
                       "client_mask_changes": sum(int(m.get("mask_changes", 0)) for m in client_metrics),
                       "client_time_s": sum(float(m.get("train_time_s", 0.0)) for m in client_metrics)}
            own = sorted({k for m in client_metrics for k in m if k not in STANDARD_CLIENT_METRICS})
            self.round_info["extra"] = {**self.round_info.get("extra", {}),
                                        **{f"client_{k}": sum(float(m.get(k, 0.0)) for m in client_metrics)
                                           for k in own}}
            self.round_info["mask_changes"] = (self.mask.changed(old_mask) if old_mask is not None
                                               and self.mask is not None else 0)
        else:
            self.round_info["mask_changes"] = 0
        self.round_info["aggregate_s"] = time.perf_counter() - t_last
        self.round_info.update(metrics)
        return None, MetricRecord(metrics) if metrics else None

    def configure_evaluate(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord,
                           grid: Grid) -> Iterable[Message]:
        return []  # evaluation runs on the server device, see fedsparse.fl.server_app

    def aggregate_evaluate(self, server_round: int, replies: Iterable[Message]) -> MetricRecord | None:
        return None

    def summary(self) -> None:
        log.info("%s: %d masked tensors, density %.4f", type(self).__name__, len(self.masked),
                 self.density())
