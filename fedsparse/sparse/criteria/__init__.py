"""Weight-scoring criteria (higher = keep), one module per criterion, behind `CRITERIA`."""

from fedsparse.sparse.criteria import (  # noqa: F401  (register criteria)
    grasp,
    gradient,
    learned,
    lottery_ticket,
    magnitude,
    movement,
    random,
    snip,
    synflow,
)
from fedsparse.sparse.criteria.registry import CRITERIA, Batches, Criterion, score
from fedsparse.sparse.criteria.synflow import synflow_mask

__all__ = ["CRITERIA", "Batches", "Criterion", "score", "synflow_mask"]
