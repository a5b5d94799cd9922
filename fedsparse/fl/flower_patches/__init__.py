"""Every use of Flower's private internals, behind one version gate and one off switch.

The patches only make simulations faster; with them off every metric and byte count is the
same: the server then learns which node holds which partition by asking every node once
(`query.partition`, fedsparse.fl.node_directory), transfers reported apart (summary.json's
`node_discovery`).

- `vce_queue`: a one-pass message extractor swapped into the simulation engine
  (`vce_api.add_messages_to_queue`); it also hands the engine's node id -> partition id mapping
  to the server of the same simulation (`engine_partitions`).
- `link_events`: `InMemoryLinkState` notes each instruction and reply it stores in an inbox, which
  wakes the extractor and the server's reply loop (`reply_inbox`).
- `objects`: Flower's `no_object_id_recompute` while counting a message's bytes
  (`object_ids_cached`) and dropping the chunk views an `Array` caches (`release_chunk_views`).

They apply only on the flwr versions they were checked against (`SUPPORTED`), and not when
`flower_patches=false` (the last `install`) or `FEDSPARSE_FLOWER_PATCHES=0` is set. This module
imports no Flower internals; its submodules are imported only once the gate is passed, so a
Flower upgrade that moves a private module breaks nothing outside this package.
"""

from __future__ import annotations

import contextlib
import logging
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flwr.app import Message

    from fedsparse.config import Config
    from fedsparse.fl.flower_patches.inbox import Inbox

SUPPORTED = ("1.41.",)
"""Prefixes of the flwr versions the patches were checked against."""
ENV_VAR = "FEDSPARSE_FLOWER_PATCHES"
"""`FEDSPARSE_FLOWER_PATCHES=0` forces the patches off, whatever the config says."""

_log = logging.getLogger(__name__)
_off_by_config = False  # the last `install` had flower_patches=false
_installed = False  # the simulation engine's patches are in place in this process
_told: set[str] = set()  # unsupported versions already logged


def supported() -> bool:
    """True on a flwr version the patches were checked against (else a DEBUG line says so)."""
    import flwr

    if flwr.__version__.startswith(SUPPORTED):
        return True
    if flwr.__version__ not in _told:
        _told.add(flwr.__version__)
        _log.debug("flwr %s is not a version the Flower patches were checked against (%s): they "
                   "stay off", flwr.__version__, ", ".join(f"{v}x" for v in SUPPORTED))
    return False


def enabled(cfg: Config | None = None) -> bool:
    """Whether the patches apply: not switched off by `ENV_VAR`, by `cfg.runtime.flower_patches` (without
    `cfg`: by the last `install`), and a supported flwr version."""
    if os.environ.get(ENV_VAR, "").strip() == "0":
        return False
    off = _off_by_config if cfg is None else not cfg.runtime.flower_patches
    if off:
        return False
    return supported()


def install(cfg: Config) -> bool:
    """Put the simulation engine's patches in place in this process when `enabled(cfg)`; else
    take out any an earlier run put in, so that this run uses Flower's own code. Returns whether
    they are in place."""
    global _off_by_config, _installed
    _off_by_config = not cfg.runtime.flower_patches
    on = enabled(cfg)
    if not on:
        _log.debug("Flower patches off (flower_patches=%s, %s=%r)", cfg.runtime.flower_patches, ENV_VAR,
                   os.environ.get(ENV_VAR))
    if on or _installed:
        from fedsparse.fl.flower_patches import vce_queue

        if on:
            vce_queue.install()
        else:
            vce_queue.uninstall()
    _installed = on
    return on


def engine_partitions(grid: Any, timeout: float) -> dict[int, int] | None:
    """Node id -> partition id as this process's simulation engine assigned them (see
    `vce_queue.engine_partitions`); None at once where the patches are not in place."""
    if not _installed:
        return None
    from fedsparse.fl.flower_patches import vce_queue

    return vce_queue.engine_partitions(grid, timeout)


def reply_inbox(grid: Any) -> Inbox | None:
    """The inbox of the reply ids `grid`'s LinkState stores, where it signals them (see
    `link_events`); None where the patches are not in place or `grid` is another grid."""
    if not _installed:
        return None
    from fedsparse.fl.flower_patches import link_events

    return link_events.REPLIES if link_events.signals(grid) else None


def object_ids_cached() -> contextlib.AbstractContextManager[None]:
    """Flower's `no_object_id_recompute` (each object hashed once, not again by every parent)
    where the patches apply; else nothing (the same ids, hashed more often)."""
    if not enabled():
        return contextlib.nullcontext()
    from fedsparse.fl.flower_patches.objects import no_object_id_recompute

    return no_object_id_recompute()


def release_chunk_views(message: Message) -> None:
    """Drop the chunk views each `Array` of `message` cached while its object id was computed
    (`objects.drop_chunk_views`), where the patches apply; else keep them (slower pickling)."""
    if enabled():
        from fedsparse.fl.flower_patches.objects import drop_chunk_views

        drop_chunk_views(message)

