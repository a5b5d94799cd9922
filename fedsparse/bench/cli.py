"""`python -m simulations.pruning_bench [preset=NAME] [key=value ...]`: run the grid, resumably.

Every cell's run config is validated first; cells already in `<output_dir>/results.csv` are
skipped; each finished cell appends its row at once; at the end `summary.md` and
`heatmaps/*.png` are written for the cells of this grid. Bad input -> exit 2 and one line.
A cell that fails at run time is reported and left out of the CSV (a later call retries it);
the exit code is then 1.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from fedsparse.bench.cell import run_and_measure
from fedsparse import usage
from fedsparse.bench.config import CHECKS, PRETRAIN_CHECKS, BenchConfig, load_bench_config
from fedsparse.bench.grid import Cell, cell_config, cells, config_hash
from fedsparse.bench.report import write_report
from fedsparse.bench.results import append_row, done_keys, read_rows, row_key
from fedsparse.config import Config
from fedsparse.errors import ConfigError, DataError
from fedsparse.logs import setup_logging

log = logging.getLogger("fedsparse.bench")

RunFn = Callable[[Cell, Config], dict[str, Any]]


def results_path(bench: BenchConfig) -> Path:
    return Path(bench.output_dir) / "results.csv"


def _ensure_scorer(bench: BenchConfig) -> None:
    """Criterion `learned` without `fl.scorer_path`: train the default scorer once into
    `<output_dir>/scorer.npz` (when `train_scorer`), and use it."""
    if "learned" not in bench.criteria or bench.fl.get("scorer_path") or not bench.train_scorer:
        return
    if all((v or {}).get("scorer_path") for v in bench.variants.values()):
        return
    path = Path(bench.output_dir) / "scorer.npz"
    if not path.exists():
        from fedsparse.bench.autosparse import ScorerConfig, make_scorer

        print(f"training the learned scorer into {path} (criterion 'learned', no fl.scorer_path)",
              flush=True)
        make_scorer(ScorerConfig(out=str(path), data_dir=bench.fl.get("data_dir")))
    bench.fl["scorer_path"] = str(path)


def _ensure_checkpoints(bench: BenchConfig, grid: list[Cell], cells_dir: str) -> None:
    """Pre-train every variant's missing `init_checkpoint` (see `bench/pretrain.py`) on the
    images that no client holds in any (split, seed) of this grid."""
    for variant, keys in bench.variants.items():
        path = (keys or {}).get("init_checkpoint")
        if not path or Path(path).exists():
            continue
        from fedsparse.bench.pretrain import pretrain

        seen, cfgs = set(), []
        for c in grid:
            if c.variant == variant and (c.split, c.seed) not in seen:
                seen.add((c.split, c.seed))
                cfgs.append(cell_config(bench, c, cells_dir, drop=("init_checkpoint",)))
        if not cfgs:
            continue
        print(f"pre-training {cfgs[0].model.model} for variant {variant!r} into {path}", flush=True)
        report = pretrain(cfgs, bench.pretrain, Path(path))
        print(f"    {report['pretrain_images']} images, test accuracy "
              f"{100 * report['test_accuracy_all_classes']:.1f}% (all classes), "
              f"{report['seconds']} s", flush=True)


def _header(bench: BenchConfig, wall_s: float, ran: int) -> str:
    fl = ", ".join(f"{k}={v}" for k, v in bench.fl.items())
    return (f"Bench `{bench.name}`{f' (preset `{bench.preset}`)' if bench.preset else ''}: "
            f"base config `{bench.base_config}` with {fl}; strategy fixed_mask, {bench.rounds} "
            f"rounds per cell. Written {datetime.now():%Y-%m-%d %H:%M}; this call ran {ran} cells "
            f"in {wall_s:.0f} s on {os.cpu_count()} CPU cores ({platform.machine()}, "
            f"{platform.system()}).")


def run_bench(bench: BenchConfig, run_fn: RunFn = run_and_measure) -> int:
    """Run every cell not yet in the CSV; write the report; 0 if all cells are done, else 1."""
    t0 = time.perf_counter()
    if not bench.fl.get("ray_address"):
        # ray.init() joins any cluster started on this machine with `ray start` (found via
        # /tmp/ray/ray_current_cluster) and then rejects the runner's num_cpus: start our own
        os.environ.setdefault("RAY_ADDRESS", "local")
    out = Path(bench.output_dir)
    csv_path = results_path(bench)
    grid = cells(bench)
    cells_dir = str(out / "cells")
    for cell in grid:  # everything but the files made below (learned scorer, checkpoints)
        stand_in = dataclasses.replace(cell, method="random") if cell.method == "learned" else cell
        cell_config(bench, stand_in, cells_dir, drop=("init_checkpoint",))
    _ensure_scorer(bench)
    _ensure_checkpoints(bench, grid, cells_dir)
    configs = {cell: cell_config(bench, cell, cells_dir) for cell in grid}  # validate all first
    hashes = {cell: config_hash(cfg) for cell, cfg in configs.items()}
    done = done_keys(csv_path)
    todo = [c for c in grid if (*c.key, hashes[c]) not in done]
    print(f"pruning bench: {len(grid)} cells, {len(grid) - len(todo)} already in {csv_path}, "
          f"{len(todo)} to run", flush=True)
    failed: list[Cell] = []
    for i, cell in enumerate(todo, start=1):
        print(f"[{i}/{len(todo)}] {cell.run_name} seed={cell.seed}", flush=True)
        try:
            row = run_fn(cell, configs[cell])
        except (ConfigError, DataError):
            raise
        except Exception as e:  # noqa: BLE001 - one failed cell must not stop the grid
            log.error("cell %s failed: %s: %s", cell.run_name, type(e).__name__, e)
            failed.append(cell)
            continue
        append_row(csv_path, {**row, "config_hash": hashes[cell]})
        acc = row.get("central_accuracy")
        print(f"    central acc {acc if acc is None else f'{100 * acc:.1f}%'}, "
              f"{row.get('wall_time_s')} s", flush=True)
    wanted = {(*c.key, hashes[c]) for c in grid}
    latest = {row_key(r): r for r in read_rows(csv_path) if row_key(r) in wanted}
    rows = list(latest.values())
    if rows:
        summary, pngs = write_report(rows, out, bench.criteria, bench.splits,
                                     _header(bench, time.perf_counter() - t0, len(todo) - len(failed)))
        print(f"wrote {csv_path}, {summary} and {len(pngs)} heatmaps", flush=True)
    if failed:
        print(f"{len(failed)} cells failed (rerun to retry): "
              f"{', '.join(c.run_name for c in failed)}", file=sys.stderr)
        return 1
    return 0


def _help_sections() -> list[usage.Section]:
    """The grid's settings (defaults: configs/pruning_bench.yaml) and those of its pretraining."""
    try:
        bench = load_bench_config([])
    except (ConfigError, DataError):
        bench = BenchConfig()
    return [usage.Section("Bench settings (key=value; defaults: configs/pruning_bench.yaml)", bench, CHECKS),
            usage.Section("Pretraining settings (pretrain.KEY=VALUE)", bench.pretrain, PRETRAIN_CHECKS,
                          prefix="pretrain.")]


def main(argv: Sequence[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    usage.exit_if_help(args, "simulations.pruning_bench", "[preset=NAME] [config=NAME_OR_PATH] [key=value ...]",
                       _help_sections, "fl.KEY=VALUE sets any run setting of every cell "
                       "(python -m simulations.cifar_noniid --help lists them).\nDetails: docs/pruning-bench.md.")
    setup_logging("warning")  # each cell's run sets its own `log_level` (fl.log_level)
    try:
        bench = load_bench_config(args)
        return run_bench(bench)
    except (ConfigError, DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
