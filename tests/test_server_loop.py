"""The server's round plumbing: replies streamed as they arrive, torch threads per phase."""

from __future__ import annotations

import os
import threading
import time
from types import SimpleNamespace

import torch

from fedsparse.fl import flower_patches, receive
from fedsparse.fl.flower_patches.inbox import Inbox
from fedsparse.fl.receive import replies_as_they_arrive
from fedsparse.fl.server_threads import clients_waiting, rounds_running


class FakeGrid:
    """Replies to message i become available at pull number `ready[i]`; `None` never."""

    def __init__(self, ready: list[int | None]) -> None:
        self.ready, self.pulls, self.delivered = ready, 0, set()

    def push_messages(self, messages: list[object]) -> list[str]:
        return [f"m{i}" for i in range(len(messages))]

    def pull_messages(self, ids: set[str]) -> list[SimpleNamespace]:
        self.pulls += 1
        out = []
        for i, at in enumerate(self.ready):
            mid = f"m{i}"
            if mid in ids and at is not None and at <= self.pulls and mid not in self.delivered:
                self.delivered.add(mid)
                out.append(SimpleNamespace(metadata=SimpleNamespace(reply_to_message_id=mid), i=i))
        return out


def test_replies_are_yielded_as_they_arrive(monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(receive, "PULL_INTERVAL_S", 0.0)
    grid = FakeGrid([3, 1, 2])
    seen = []
    for reply in replies_as_they_arrive(grid, [object()] * 3, timeout=10):
        seen.append((reply.i, grid.pulls))  # consumed before the next pull happens
    assert seen == [(1, 1), (2, 2), (0, 3)]
    assert grid.pulls == 3  # stops once every message has its reply


def test_replies_stop_at_the_timeout(monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(receive, "PULL_INTERVAL_S", 0.001)
    grid = FakeGrid([1, None])
    assert [r.i for r in replies_as_they_arrive(grid, [object()] * 2, timeout=0.05)] == [0]
    assert grid.pulls > 1


def test_a_stored_reply_wakes_the_loop_before_the_pull_interval(monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(receive, "FULL_PULL_S", 60.0)
    inbox = Inbox()
    monkeypatch.setattr(flower_patches, "reply_inbox", lambda grid: inbox)  # a grid that signals
    grid = FakeGrid([None])

    def reply_later() -> None:
        time.sleep(0.05)
        grid.ready[0] = grid.pulls + 1
        inbox.put("m0")  # what the patched LinkState does when it stores a reply

    threading.Thread(target=reply_later).start()
    t0 = time.monotonic()
    assert [r.i for r in replies_as_they_arrive(grid, [object()], timeout=600)] == [0]
    assert time.monotonic() - t0 < 30  # woken by the event, not after the 60 s interval
    assert grid.pulls == 2


def test_server_thread_phases_restore_the_setting() -> None:
    before = torch.get_num_threads()
    with rounds_running():
        assert torch.get_num_threads() == 1
        with clients_waiting():
            assert torch.get_num_threads() == (os.cpu_count() or 1)
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
