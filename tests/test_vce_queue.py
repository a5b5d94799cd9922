"""The one-pass message extractor that replaces Flower's per-node polling in simulations."""

from __future__ import annotations

import threading
from types import SimpleNamespace

from flwr.server.superlink.fleet.vce import vce_api

from fedsparse.fl import flower_patches
from fedsparse.fl.flower_patches import link_events, vce_queue


class FakeState:
    """The parts of InMemoryLinkState that `pick_messages` uses."""

    def __init__(self, messages: dict[str, SimpleNamespace], expired: set[str] = frozenset()) -> None:
        self.lock = threading.RLock()
        self.message_ins_store = messages
        self.expired = set(expired)
        self.checked: list[set[str]] = []

    def _check_stored_messages(self, ids: set[str]) -> None:
        self.checked.append(set(ids))
        for i in ids & self.expired:
            del self.message_ins_store[i]


def _msg(dst: int, delivered: str = "") -> SimpleNamespace:
    return SimpleNamespace(metadata=SimpleNamespace(dst_node_id=dst, delivered_at=delivered))


def test_one_message_per_node_in_arrival_order_marked_delivered() -> None:
    store = {"a": _msg(7), "b": _msg(3), "c": _msg(7), "d": _msg(9, delivered="earlier"),
             "e": _msg(5), "f": _msg(11), "g": _msg(4)}
    state = FakeState(store, expired={"e"})
    picked = vce_queue.pick_messages(state, {3: 0, 4: 1, 5: 2, 7: 3, 9: 4})
    assert picked == [store["a"], store["b"], store["g"]]  # c: node 7 again; d: delivered;
    # e: expired (dropped from the store); f: node 11 is not one of the simulated nodes
    assert "e" not in store
    assert state.checked == [{"a", "b", "c", "e", "f", "g"}]  # each waiting message checked once
    assert all(m.metadata.delivered_at != "" for m in picked)
    assert store["c"].metadata.delivered_at == "" and store["d"].metadata.delivered_at == "earlier"
    # next tick: node 7's second message goes out
    assert vce_queue.pick_messages(state, {7: 3}) == [store["c"]]
    assert vce_queue.pick_messages(state, {7: 3}) == []


def test_install_swaps_the_extractor_only_on_a_known_version_when_on(monkeypatch) -> None:  # noqa: ANN001
    import flwr

    from fedsparse.config import Config

    monkeypatch.setattr(vce_api, "add_messages_to_queue", vce_queue._ORIGINAL)
    monkeypatch.setattr(flower_patches, "_off_by_config", flower_patches._off_by_config)  # restored
    monkeypatch.setattr(flower_patches, "_installed", flower_patches._installed)  # after the test
    monkeypatch.delenv(flower_patches.ENV_VAR, raising=False)
    monkeypatch.setattr(flwr, "__version__", "1.42.0")
    assert flower_patches.install(Config()) is False
    assert vce_api.add_messages_to_queue is vce_queue._ORIGINAL
    monkeypatch.setattr(flwr, "__version__", "1.41.0")
    assert flower_patches.install(Config()) is True
    assert vce_api.add_messages_to_queue is vce_queue.extract_messages
    assert flower_patches.install(Config().with_(flower_patches=False)) is False  # a later run: taken out
    assert vce_api.add_messages_to_queue is vce_queue._ORIGINAL
    assert not link_events.signals(SimpleNamespace(state=object()))
    monkeypatch.setenv(flower_patches.ENV_VAR, "0")
    assert flower_patches.install(Config()) is False  # the environment wins over the config
    assert vce_api.add_messages_to_queue is vce_queue._ORIGINAL


def test_link_state_stores_fill_the_inboxes_once_installed(monkeypatch) -> None:  # noqa: ANN001
    from flwr.server.superlink.linkstate.in_memory_linkstate import InMemoryLinkState

    monkeypatch.setattr(InMemoryLinkState, "store_message_ins",
                        lambda self, m: None if m.metadata.message_id == "bad" else "ok")
    monkeypatch.setattr(InMemoryLinkState, "store_message_res", lambda self, m: "ok")
    link_events.install()
    link_events.install()  # a second install does not wrap twice
    assert not hasattr(InMemoryLinkState.store_message_ins.__wrapped__, "__wrapped__")
    state = object.__new__(InMemoryLinkState)
    link_events.INSTRUCTIONS.take(), link_events.REPLIES.take()
    for mid in ("i1", "bad", "i2"):
        state.store_message_ins(SimpleNamespace(metadata=SimpleNamespace(message_id=mid)))
    state.store_message_res(SimpleNamespace(metadata=SimpleNamespace(reply_to_message_id="i2")))
    assert link_events.INSTRUCTIONS.stored.is_set()
    assert link_events.INSTRUCTIONS.take() == ["i1", "i2"]  # stored ones only, in order
    assert not link_events.INSTRUCTIONS.stored.is_set()
    assert link_events.REPLIES.take({"i1"}) == []
    assert link_events.REPLIES.take({"i1", "i2"}) == ["i2"]


def test_inbox_takes_only_the_asked_ids_and_discards_quietly() -> None:
    inbox = link_events.Inbox()
    for mid in ("a", "b", "c", "d"):
        inbox.put(mid)
    assert inbox.take({"d", "b", "x"}) == ["b", "d"]  # oldest first, whichever set is smaller
    assert inbox.take({"a", "b", "c", "d", "x", "y"}) == ["a", "c"]
    inbox.put("e")
    inbox.discard(["e"])
    assert inbox.stored.is_set()  # discard leaves the wake-up to whoever waits
    assert inbox.take() == []


def test_an_incremental_pass_picks_only_the_new_ids() -> None:
    store = {"a": _msg(7), "b": _msg(3), "c": _msg(5)}
    state = FakeState(store)
    assert vce_queue.pick_messages(state, {3: 0, 5: 1, 7: 2}, among=["c", "zz"]) == [store["c"]]
    assert state.checked == [{"c"}]
    assert vce_queue.pick_messages(state, {3: 0, 5: 1, 7: 2}) == [store["a"], store["b"]]
