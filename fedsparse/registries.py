"""Every registry of pluggable pieces, by kind: what `config.validate` checks names against. Each
is imported when first asked for; none imports Flower (strategies are declared in theirs)."""

from __future__ import annotations

from fedsparse.errors import ConfigError


def names(kind: str) -> list[str]:
    """Allowed names of `kind` (dataset, split, model, strategy, budget, criterion, schedule,
    codec, value_dtype, logger)."""
    if kind == "dataset":
        from fedsparse.data import DATASETS as reg
    elif kind == "split":
        from fedsparse.data import SPLITS as reg
    elif kind == "model":
        from fedsparse.models import MODELS as reg
    elif kind == "strategy":
        from fedsparse.fl.strategies import STRATEGIES as reg
    elif kind == "budget":
        from fedsparse.sparse.budgets import BUDGETS as reg
    elif kind == "criterion":
        from fedsparse.sparse.criteria import CRITERIA as reg
    elif kind == "schedule":
        from fedsparse.sparse.schedules import DROP_SCHEDULES as reg
    elif kind == "codec":
        from fedsparse.comm import codec_names

        return codec_names()
    elif kind == "logger":
        from fedsparse.metrics.loggers import LOGGERS as reg
    elif kind == "value_dtype":
        from fedsparse.comm import STORAGE

        return sorted(STORAGE)
    else:
        raise ConfigError(f"unknown kind of registry '{kind}'")
    return reg.names()
