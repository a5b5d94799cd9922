"""`CompareConfig`: what `simulations.compare` runs; every other `key=value` goes to each method."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fedsparse.bench.args import load_dataclass
from fedsparse.compare.methods import is_sparse, load_methods, method_config
from fedsparse.config import Config, allows, load_config
from fedsparse.errors import ConfigError

DEFAULT_METHODS = ["fedavg", "fedavgm", "fedprox", "feddst", "feddst_faithful", "feddst_plus",
                   "fixed_random", "fixed_snip"]


@dataclass
class CompareConfig:
    config: str = "cifar_noniid"
    """base experiment config (a name under configs/ or a YAML path), shared by every method"""
    methods: list[str] = field(default_factory=lambda: list(DEFAULT_METHODS))
    methods_file: str | None = None
    """YAML mapping method name -> config overrides; null = configs/methods.yaml"""
    out: str | None = None
    """comparison folder; null = <output_dir>/compare-<config>-s<seed>"""
    caps_gb: list[float] | None = None
    """cumulative upload caps of the table (GB = 1e9 bytes); null = chosen from the runs"""
    dense_budget: float = 2.0
    """dense methods stop once their upload reaches this x the largest sparse run's (0 = never)"""
    archive: str | None = None
    """folder to copy the small outputs into (per method metrics.jsonl.gz, summary.json,
    config.yaml, as each finishes; caps.csv, comparison.md, plots), e.g. under docs/; a method
    archived there with the same settings is not run again; null = none"""


@allows("null or a non-empty list of positive numbers (GB)")
def _caps(v: Any, _: CompareConfig) -> str | None:
    if v is None or (len(v) > 0 and all(isinstance(x, (int, float)) and x > 0 for x in v)):
        return None
    return "null or a non-empty list of positive numbers (GB)"


CHECKS = {
    "methods": allows("a non-empty list of distinct method names (of methods_file)")(
        lambda v, _: None if len(v) > 0 and len(set(v)) == len(v) else
        "a non-empty list of distinct method names"),
    "caps_gb": _caps,
    "dense_budget": allows("a number >= 0")(lambda v, _: None if v >= 0 else "a number >= 0"),
}


@dataclass
class Comparison:
    """A checked comparison: its settings, folder and each method's config."""

    settings: CompareConfig
    folder: Path
    overrides: list[str]
    methods: dict[str, dict[str, Any]]
    configs: dict[str, Config]

    @property
    def sparse(self) -> list[str]:
        """The compared methods whose strategy keeps a mask, in the order given."""
        return [m for m in self.settings.methods if is_sparse(self.configs[m])]


def load_comparison(argv: Sequence[str]) -> Comparison:
    """Split `argv` into comparison settings and experiment overrides, then validate every
    method's config (before anything runs)."""
    own = {f.name for f in dataclasses.fields(CompareConfig)}
    mine = [a for a in argv if a.split("=", 1)[0] in own]
    overrides = [a for a in argv if a.split("=", 1)[0] not in own]
    for arg in overrides:
        if arg.split("=", 1)[0] in ("resume", "name", "output_dir") and "=" in arg:
            raise ConfigError(f"{arg.split('=', 1)[0]} cannot be set in a comparison: each method's "
                              "run folder is made (and resumed) inside the comparison folder")
    settings = load_dataclass(CompareConfig, CHECKS, mine)
    methods = load_methods(settings.methods_file)
    base = load_config(settings.config, overrides)
    folder = Path(settings.out or Path(base.runtime.output_dir) / f"compare-{base.name}-s{base.seed}")
    configs = {m: method_config(settings.config, overrides, m, methods) for m in settings.methods}
    return Comparison(settings, folder, overrides, methods, configs)
