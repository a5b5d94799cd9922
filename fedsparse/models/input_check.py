"""Input-shape validation for models fixed to one dataset."""

from __future__ import annotations

from fedsparse.errors import ConfigError


def require_input(model: str, in_channels: int, image_size: int, want: tuple[int, int]) -> None:
    """Raise ConfigError unless `(in_channels, image_size)` equals `want`."""
    if (in_channels, image_size) != want:
        raise ConfigError(
            f"model '{model}' needs {want[0]}x{want[1]}x{want[1]} inputs, "
            f"got {in_channels}x{image_size}x{image_size}"
        )
