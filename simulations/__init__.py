"""Runnable experiments: `python -m simulations.<name> [key=value ...]`."""
