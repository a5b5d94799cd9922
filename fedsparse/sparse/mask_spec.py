"""`MaskSpec`: what the initial mask of pruning at initialisation is made of, typed and frozen."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from fedsparse.errors import ConfigError
from fedsparse.plugin_options import as_kwargs
from fedsparse.sparse.ablation import ABLATIONS
from fedsparse.sparse.criteria import CRITERIA, Batches, score
from fedsparse.sparse.select import GRANULARITIES, SCOPES

if TYPE_CHECKING:
    from fedsparse.config import Config

CRITERION_OPTIONS_KEY = "criterion_options"


@dataclass(frozen=True)
class MaskSpec:
    """The initial mask: keep `density` of the masked weights ranked by `criterion` (with its
    typed `options`), per layer under `budget` (scope "layer") or by one ranking (scope
    "global"), in groups of `granularity` (select.GRANULARITIES: unstructured, channel, input);
    `input_keep` < 1 first keeps that fraction of the first layer's inputs; `ablation` is one of
    ablation.ABLATIONS. `options=None` means the criterion's defaults."""

    density: float
    criterion: str = "random"
    options: Any = field(default=None)
    budget: str = "uniform"
    scope: str = "layer"
    granularity: str = "unstructured"
    input_keep: float = 1.0
    ablation: str = "none"

    def __post_init__(self) -> None:
        if self.options is None:
            object.__setattr__(self, "options", CRITERIA.options(self.criterion, {},
                                                                 CRITERION_OPTIONS_KEY))
        expected = CRITERIA.options_class(self.criterion)
        if not isinstance(self.options, expected):
            raise ConfigError(f"criterion '{self.criterion}' takes {expected.__name__}, "
                              f"got {type(self.options).__name__}")
        if not 0.0 < self.density <= 1.0:
            raise ConfigError(f"density must be in (0, 1], got {self.density}")
        if self.scope not in SCOPES:
            raise ConfigError(f"scope={self.scope!r}: must be one of: {', '.join(SCOPES)}")
        GRANULARITIES.get(self.granularity)
        if not 0.0 < self.input_keep <= 1.0:
            raise ConfigError(f"input_keep={self.input_keep}: must be in (0, 1]")
        if self.ablation not in ABLATIONS:
            raise ConfigError(f"mask_ablation={self.ablation!r}: must be one of: {', '.join(ABLATIONS)}")
        if self.granularity != "unstructured" and (self.input_keep < 1 or self.ablation == "shuffle"):
            raise ConfigError(f"granularity={self.granularity!r} needs input_keep=1.0 and "
                              "mask_ablation other than shuffle (both place single weights)")

    @classmethod
    def from_config(cls, cfg: Config) -> MaskSpec:
        """The spec of a run's config: density 1 - sparsity, the criterion's options from
        `criterion_options` (and, for fields declaring a `config_key`, from that key)."""
        options = CRITERIA.options(cfg.mask.criterion, cfg.mask.criterion_options, CRITERION_OPTIONS_KEY, cfg)
        return cls(density=1.0 - cfg.mask.sparsity, criterion=cfg.mask.criterion, options=options,
                   budget=cfg.mask.budget, scope=cfg.mask.scope, granularity=cfg.mask.granularity,
                   input_keep=cfg.mask.input_keep, ablation=cfg.mask.mask_ablation)

    @property
    def scores_data(self) -> bool:
        """Whether the criterion's scores come from data (and so may be computed by clients):
        every criterion except SynFlow, which scores an all-ones input on the server."""
        return self.criterion != "synflow"

    def score(self, model: nn.Module, names: list[str], batches: Batches | None,
              generator: torch.Generator | None = None, **extra: Any) -> dict[str, Tensor]:
        """The criterion's scores of `names` with the spec's options (`extra`: call-specific
        arguments such as SynFlow's `input_shape`)."""
        return score(self.criterion, model, names, batches, generator=generator,
                     **as_kwargs(self.options), **extra)
