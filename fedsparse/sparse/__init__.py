"""Sparse-training core: masks, budgets, criteria, prune/grow operations, schedules (no Flower)."""
