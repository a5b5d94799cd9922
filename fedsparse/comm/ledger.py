"""`CommLedger`: bytes sent per (round, client, direction), with the reference's bits alongside."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

DIRECTIONS = ("up", "down")
_KEY = {"up": "upload", "down": "download"}


class CommLedger:
    """Accumulates `record`s; repeated records of one (round, client, direction) add up."""

    def __init__(self) -> None:
        self._entries: dict[tuple[int, int | str, str], list[int]] = {}

    def record(
        self,
        round: int,
        client: int | str,
        direction: str,
        nbytes: int,
        reference_bits: int | None = None,
    ) -> None:
        """Add `nbytes` sent and the reference's count for the same transfer (None counts as 0)."""
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, got '{direction}'")
        if nbytes < 0 or (reference_bits is not None and reference_bits < 0):
            raise ValueError(f"negative size: nbytes={nbytes}, reference_bits={reference_bits}")
        entry = self._entries.setdefault((int(round), client, direction), [0, 0])
        entry[0] += int(nbytes)
        entry[1] += int(reference_bits or 0)

    def round_totals(self, round: int) -> dict[str, Any]:
        """upload/download bytes (total and per client) and reference bytes of one round."""
        totals: dict[str, Any] = {}
        for direction, word in _KEY.items():
            per_client: dict[int | str, int] = defaultdict(int)
            reference_bits = 0
            for (r, client, d), (nbytes, ref) in self._entries.items():
                if r == round and d == direction:
                    per_client[client] += nbytes
                    reference_bits += ref
            totals[f"{word}_bytes"] = sum(per_client.values())
            totals[f"{word}_bytes_per_client"] = dict(per_client)
            totals[f"reference_{word}_bytes"] = reference_bits / 8
        return totals

    def cumulative(self) -> dict[str, float]:
        """upload/download bytes and reference bytes summed over all rounds so far."""
        totals: dict[str, float] = {}
        for direction, word in _KEY.items():
            rows = [v for (_, _, d), v in self._entries.items() if d == direction]
            totals[f"{word}_bytes"] = sum(nbytes for nbytes, _ in rows)
            totals[f"reference_{word}_bytes"] = sum(ref for _, ref in rows) / 8
        return totals

    def state_dict(self) -> dict[str, list[list[Any]]]:
        """JSON-serialisable content: [round, client, direction, nbytes, reference_bits] rows."""
        rows = [[r, c, d, nbytes, ref] for (r, c, d), (nbytes, ref) in self._entries.items()]
        return {"entries": rows}

    def load_state_dict(self, state: dict[str, list[list[Any]]]) -> None:
        """Replace the content with a `state_dict()`."""
        self._entries = {(r, c, d): [nbytes, ref] for r, c, d, nbytes, ref in state["entries"]}
