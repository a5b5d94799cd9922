"""The bench's cells: one run of `fixed_mask` per combination of the grid lists."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from fedsparse.bench.config import BenchConfig, parse_split
from fedsparse.config import Config, load_config

# Criteria that read no data: scoring them "federated" gives the server's result (magnitude,
# synflow) or another draw of noise (random), so by default they only run with scoring=server.
DATA_FREE = ("random", "magnitude", "synflow")

KEY = ("method", "sparsity", "split", "scoring", "ablation", "variant", "seed")
"""The CSV columns that identify a cell."""


@dataclass(frozen=True)
class Cell:
    method: str
    sparsity: float
    split: str
    scoring: str
    ablation: str
    variant: str
    seed: int

    @property
    def key(self) -> tuple[str, ...]:
        """Identity as CSV strings (sparsity written with `format_sparsity`)."""
        return (self.method, format_sparsity(self.sparsity), self.split, self.scoring,
                self.ablation, self.variant, str(self.seed))

    @property
    def run_name(self) -> str:
        """Run-folder prefix (no '/')."""
        return "-".join((self.method, f"s{format_sparsity(self.sparsity)}", self.split,
                         self.scoring, self.ablation, self.variant))


def config_hash(cfg: Config) -> str:
    """The run config's identity (`Config.hash()`, shortened): a CSV row counts as the cell's
    result only if it was made with the same settings."""
    return cfg.hash()[:12]


def format_sparsity(s: float) -> str:
    return f"{float(s):g}"


def cells(bench: BenchConfig) -> list[Cell]:
    """Every cell of the grid, in a stable order (seed, variant, split, sparsity, method, ...)."""
    out = []
    for seed, variant, split, sparsity, method, scoring, ablation in itertools.product(
            bench.seeds, bench.variants, bench.splits, bench.sparsities, bench.criteria,
            bench.scorings, bench.ablations):
        if scoring == "federated" and method in DATA_FREE and not bench.federated_data_free:
            continue
        out.append(Cell(method, float(sparsity), split, scoring, ablation, variant, int(seed)))
    return out


def cell_overrides(bench: BenchConfig, cell: Cell, cells_dir: str,
                   drop: tuple[str, ...] = ()) -> list[str]:
    """`key=value` arguments of the cell's run config, after the file `bench.base_config`
    (without the keys in `drop`)."""
    keys: dict[str, Any] = dict(bench.fl)
    keys.update(bench.variants.get(cell.variant) or {})
    for k in drop:
        keys.pop(k, None)
    keys.update(parse_split(cell.split))
    keys.update({"strategy": "fixed_mask", "criterion": cell.method, "sparsity": cell.sparsity,
                 "scoring": cell.scoring, "mask_ablation": cell.ablation, "seed": cell.seed,
                 "rounds": bench.rounds, "name": cell.run_name, "output_dir": cells_dir,
                 "progress": False})
    return [f"{k}={_value(v)}" for k, v in keys.items()]


def _value(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def cell_config(bench: BenchConfig, cell: Cell, cells_dir: str, drop: tuple[str, ...] = ()) -> Config:
    """The validated run config of `cell` (ConfigError names the field, prefixed by the cell)."""
    from fedsparse.errors import ConfigError

    try:
        return load_config(bench.base_config, cell_overrides(bench, cell, cells_dir, drop))
    except ConfigError as e:
        raise ConfigError(f"cell {cell.run_name} (from fl/variants): {e}") from None
