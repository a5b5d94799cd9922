"""`python -m simulations.centralized_sparse [config=NAME] [key=value ...]`: run, record, summarise."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from fedsparse import usage
from fedsparse.centralized.config import CHECKS, DEFAULT_CONFIG, CentralConfig, load_central_config
from fedsparse.centralized.training import CentralTraining
from fedsparse.data import load_dataset
from fedsparse.errors import ConfigError, DataError
from fedsparse.metrics.plots import make_plots
from fedsparse.metrics.run_folder import RunFolder
from fedsparse.metrics.summary import summarize


def run_centralized(cfg: CentralConfig) -> Path:
    """Train `cfg`, writing config.yaml, metrics.jsonl, summary.json and plots; the run folder."""
    torch.set_num_threads(cfg.num_threads)
    data = load_dataset(cfg.dataset, cfg.data_dir, download=cfg.download)
    training = CentralTraining(cfg, data)
    run = RunFolder.create(cfg.output_dir, cfg.name, cfg.seed)
    run.write_config(cfg.to_yaml())
    print(f"run folder: {run.path}\n{cfg.method} on {cfg.model}/{cfg.dataset}: "
          f"{len(training.data.train_y)} training images, density {training.mask.density():.4f} "
          f"(setup {training.setup_s:.1f}s)", flush=True)
    training.train(run)
    summary = summarize(run.read_metrics())
    summary |= {"method": cfg.method, "setup_s": training.setup_s,
                "num_threads": torch.get_num_threads()}
    run.write_summary(summary)
    make_plots(run)
    return run.path


def _help_sections() -> list[usage.Section]:
    try:
        settings = load_central_config([])
    except (ConfigError, DataError):
        settings = CentralConfig()
    return [usage.Section(f"Settings (key=value; defaults: configs/{DEFAULT_CONFIG}.yaml)", settings, CHECKS)]


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry; bad input -> `error: ...` on stderr and exit status 2, no traceback."""
    args = sys.argv[1:] if argv is None else argv
    usage.exit_if_help(args, "simulations.centralized_sparse", "[config=NAME_OR_PATH] [key=value ...]",
                       _help_sections, usage.RUN_NOTES.replace("docs/config.md", "docs/centralized.md"))
    try:
        run_centralized(load_central_config(args))
    except (ConfigError, DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0
