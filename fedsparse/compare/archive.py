"""A comparison's small outputs, kept where they outlive the machine (e.g. under docs/).

`archive_run` copies a finished run's `metrics.jsonl.gz` (its metrics, gzip), `summary.json` and
`config.yaml` into `<dest>/<method>/` (the comparison does so as each method finishes, and skips
a method archived with the same settings: a comparison goes on from its archive on another
machine); `archive_report` copies the comparison's `caps.csv`, `comparison.md` and plots, and
`archive_comparison` does both.
`method_runs` reads such a folder back, or a comparison folder itself: either is enough to
rebuild the tables (`fedsparse.compare.seeds`).
"""

from __future__ import annotations

import gzip
import io
import json
import shutil
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from fedsparse.errors import DataError
from fedsparse.metrics.run_folder import CONFIG_FILE, METRICS_FILE, SUMMARY_FILE, RunFolder, atomic_write_bytes

ARCHIVED_METRICS = METRICS_FILE + ".gz"
REPORT_FILES = ("caps.csv", "comparison.md")


def archive_comparison(folder: Path, runs: dict[str, Path], dest: Path) -> list[Path]:
    """Copy the small outputs of `runs` (method -> finished run folder) and the comparison's
    report from `folder` into `dest`; returns the files written."""
    return [*(path for method, run in runs.items() for path in archive_run(run, dest / method)),
            *archive_report(folder, dest)]


def archive_report(folder: Path, dest: Path) -> list[Path]:
    """Copy the comparison's `caps.csv`, `comparison.md` and plots from `folder` into `dest`."""
    written = []
    for path in [*(folder / n for n in REPORT_FILES), *sorted(folder.glob("*.png"))]:
        if path.is_file():
            shutil.copyfile(path, dest / path.name)
            written.append(dest / path.name)
    return written


def archive_run(run: Path, out: Path) -> list[Path]:
    """Copy a finished run's metrics (gzip), summary and config into `out`; returns the files
    written (none when `run` is `out`: an archived run taken from the archive)."""
    if run.resolve() == out.resolve():
        return []
    out.mkdir(parents=True, exist_ok=True)
    target = out / ARCHIVED_METRICS
    # mtime=0: the same metrics give the same bytes, so re-archiving changes nothing in git
    buf = io.BytesIO()
    with gzip.GzipFile(filename=target.name, fileobj=buf, mode="wb", mtime=0) as f:
        f.write("".join(json.dumps(r) + "\n" for r in read_rows(run)).encode())
    # each file whole or not at all, summary last: an interrupted copy is never taken as finished
    atomic_write_bytes(target, buf.getvalue())
    for name in (CONFIG_FILE, SUMMARY_FILE):
        atomic_write_bytes(out / name, (run / name).read_bytes())
    return [target, out / SUMMARY_FILE, out / CONFIG_FILE]


def read_rows(run: Path) -> list[dict[str, Any]]:
    """A run's metric rows from `metrics.jsonl` (a run folder) or `metrics.jsonl.gz` (an archive)."""
    if (run / METRICS_FILE).is_file():
        return RunFolder(run).read_metrics()
    try:
        with gzip.open(run / ARCHIVED_METRICS, "rt", encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]
    except (OSError, json.JSONDecodeError) as e:
        raise DataError(f"{run}: no readable {METRICS_FILE} or {ARCHIVED_METRICS} ({e})") from None


def method_runs(folder: Path) -> dict[str, Path]:
    """method -> run folder, for every finished run under `folder` (an archive or a comparison
    folder): a sub-folder with summary.json, config.yaml and metrics; the method is the config's
    `name`; of several runs of one method, the newest folder name wins."""
    found: dict[str, Path] = {}
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        has_metrics = (sub / METRICS_FILE).is_file() or (sub / ARCHIVED_METRICS).is_file()
        if not ((sub / SUMMARY_FILE).is_file() and (sub / CONFIG_FILE).is_file() and has_metrics):
            continue
        name = OmegaConf.load(sub / CONFIG_FILE).get("name")
        found[str(name)] = sub
    if not found:
        raise DataError(f"{folder}: no finished run (a folder with {SUMMARY_FILE}, {CONFIG_FILE} "
                        "and metrics)")
    return found
