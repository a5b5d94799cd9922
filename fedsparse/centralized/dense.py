"""`dense`: the unpruned baseline."""

from __future__ import annotations

from fedsparse.centralized.registry import CENTRAL_METHODS, Method


@CENTRAL_METHODS.register("dense")
class Dense(Method):
    """Every weight trains; no mask (the inherited defaults)."""
