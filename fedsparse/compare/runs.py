"""Run a comparison's methods one after the other, each in its own process and run folder.

The comparison folder is the state: `<method>-<time>-s<seed>/` run folders. A method's run is its
newest folder whose config has the method's `Config.hash()` (settings changed since: a new run).
One with `summary.json` is finished and skipped; one with a checkpoint is resumed
(`resume=<folder>`); otherwise it starts anew. So an interrupted comparison goes on where it
stopped, redoing at most the rounds since a method's last checkpoint. With `archive=<dest>`, each
method's small outputs are copied to `<dest>/<method>/` as soon as it finishes (or is found
finished in the comparison folder), and a method found there with the same `Config.hash()`
counts as finished: committed under docs/, the archive carries a comparison over to a fresh
machine method by method. Ctrl-C or SIGTERM is passed on to the running method, which stops at
once and keeps its checkpoint; `run_all` then raises `Stopped`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from fedsparse import interrupt
from fedsparse.compare.archive import archive_run
from fedsparse.compare.config import Comparison
from fedsparse.compare.methods import as_args
from fedsparse.config import Config, config_from_yaml, load_config
from fedsparse.errors import DataError
from fedsparse.metrics.run_folder import CHECKPOINT_DIR, CHECKPOINT_FILE, CONFIG_FILE, SUMMARY_FILE

ENTRY = "simulations.cifar_noniid"


class Stopped(Exception):
    """A signal stopped the comparison while `method` ran; the run stopped itself, resumably, and
    its resume line is the last line of `logfile`."""

    def __init__(self, signum: int, method: str, logfile: Path) -> None:
        super().__init__(f"{method} stopped by signal {signum}")
        self.signum, self.method, self.logfile = signum, method, logfile


def method_folder(folder: Path, method: str, seed: int, config_hash: str) -> Path | None:
    """The newest run folder of `method` in the comparison folder made with the settings of
    `config_hash`, if any."""
    found = [p for p in folder.glob(f"{method}-*-s{seed}*") if p.is_dir() and run_hash(p) == config_hash]
    return max(found, key=lambda p: p.name) if found else None


def finished_run(comp: Comparison, method: str, identity: str) -> Path | None:
    """`method`'s finished run with the settings of `identity`: in the comparison folder, else in
    the archive; None if neither holds one."""
    run = method_folder(comp.folder, method, comp.configs[method].seed, identity)
    if is_done(run):
        return run
    kept = Path(comp.settings.archive) / method if comp.settings.archive else None
    return kept if is_done(kept) and run_hash(kept) == identity else None


def run_hash(run: Path) -> str | None:
    """`Config.hash()` of a run folder's config.yaml (older, flat ones too); None if unreadable."""
    try:
        return _config(run).hash()
    except Exception:  # noqa: BLE001 - a folder without a readable config is no run of this method
        return None


def start_args(comp: Comparison, method: str) -> list[str]:
    """The `key=value` arguments that start `method`'s run."""
    return [f"config={comp.settings.config}", *comp.overrides, *as_args(comp.methods[method]),
            *dense_args(comp, method), f"name={method}", f"output_dir={comp.folder}", "progress=false"]


def method_hash(comp: Comparison, method: str) -> str:
    """`Config.hash()` of the run `start_args` starts."""
    return load_config(comp.settings.config, start_args(comp, method)).hash()


def is_done(run: Path | None) -> bool:
    return run is not None and (run / SUMMARY_FILE).is_file()


def _resumable(run: Path | None) -> bool:
    return run is not None and (run / CHECKPOINT_DIR / CHECKPOINT_FILE).is_file()


def total_upload_gb(run: Path) -> float:
    return json.loads((run / SUMMARY_FILE).read_text())["total_upload_bytes"] / 1e9


def order(comp: Comparison) -> list[str]:
    """Sparse methods first: the dense ones' upload cap depends on the sparse runs' totals."""
    return comp.sparse + [m for m in comp.settings.methods if m not in comp.sparse]


def dense_args(comp: Comparison, method: str) -> list[str]:
    """Extra arguments of a dense method: stop at `dense_budget` x the largest sparse upload and
    evaluate at the same upload spacing as the sparse runs (eval_every x their density). The
    sparse runs are the comparison's sparse methods' or, when it lists none (a dense method added
    to a comparison run earlier), every finished sparse run of the same seed in its folder."""
    cfg = comp.configs[method]
    if method in comp.sparse:
        return []
    runs = sparse_runs(comp, cfg.seed)
    sparsities = ([comp.configs[m].mask.sparsity for m in comp.sparse] if comp.sparse
                  else [_config(run).mask.sparsity for run in runs])
    args = []
    if "eval_every" not in comp.methods[method] and sparsities:
        args.append(f"eval_every={max(1, round(cfg.runtime.eval_every * (1.0 - sparsities[0])))}")
    totals = [total_upload_gb(run) for run in runs]
    if comp.settings.dense_budget > 0 and totals and cfg.comm.max_upload_gb is None:
        args.append(f"max_upload_gb={comp.settings.dense_budget * max(totals):.6g}")
    return args


def sparse_runs(comp: Comparison, seed: int) -> list[Path]:
    """The finished runs that set the dense methods' upload cap (see `dense_args`)."""
    if comp.sparse:
        return [run for m in comp.sparse if (run := finished_run(comp, m, method_hash(comp, m)))]
    from fedsparse.fl.strategies.registry import STRATEGIES

    found = [p for p in sorted(comp.folder.glob(f"*-s{seed}")) if p.is_dir() and is_done(p)]
    return [p for p in found if (c := _config(p)).train.strategy in STRATEGIES
            and STRATEGIES.get(c.train.strategy).sparse]


def _config(run: Path) -> Config:
    return config_from_yaml((run / CONFIG_FILE).read_text(encoding="utf-8"))


def run_all(comp: Comparison, log=print) -> dict[str, Path]:
    """Run (or resume, or skip) every method in `order`; returns method -> finished run folder."""
    comp.folder.mkdir(parents=True, exist_ok=True)
    done: dict[str, Path] = {}
    methods = order(comp)
    for i, method in enumerate(methods, start=1):
        seed, identity = comp.configs[method].seed, method_hash(comp, method)
        if run := finished_run(comp, method, identity):
            log(f"[{i}/{len(methods)}] {method}: done ({run}), skipped")
            done[method] = _archived(comp, method, run)
            continue
        run = method_folder(comp.folder, method, seed, identity)
        if _resumable(run):
            args = [f"resume={run}", "progress=false"]
            what = f"resuming {run.name}"
        else:
            args = start_args(comp, method)
            what = "starting"
        logfile = comp.folder / f"{method}.log"
        log(f"[{i}/{len(methods)}] {method}: {what} (log: {logfile})")
        t0 = time.perf_counter()
        with open(logfile, "a") as out:
            out.write(f"$ python -m {ENTRY} {' '.join(args)}\n")
            out.flush()
            child = subprocess.Popen([sys.executable, "-m", ENTRY, *args], stdout=out,  # in this cwd:
                                     stderr=subprocess.STDOUT)  # relative paths mean the same
            with interrupt.forward_signals(child) as received:
                rc = child.wait()
        if received:
            raise Stopped(received[0], method, logfile)
        run = method_folder(comp.folder, method, seed, identity)
        if rc != 0 or not is_done(run):
            raise DataError(f"method {method} failed (exit {rc}); see {logfile}; run the "
                            "comparison again to resume it")
        log(f"[{i}/{len(methods)}] {method}: finished in {time.perf_counter() - t0:.0f} s")
        done[method] = _archived(comp, method, run)
    return done


def _archived(comp: Comparison, method: str, run: Path) -> Path:
    """`run`, after copying its small outputs into the archive (if any; nothing to copy for a run
    taken from the archive)."""
    if comp.settings.archive:
        archive_run(run, Path(comp.settings.archive) / method)
    return run
