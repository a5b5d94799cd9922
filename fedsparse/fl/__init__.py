"""Flower glue: ClientApp, ServerApp, strategies, payloads (translates records <-> sparse core)."""
