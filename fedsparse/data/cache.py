"""On-disk cache of decoded datasets: one folder of .npy arrays per (dataset, source, size, mtime).

Arrays are loaded memory-mapped copy-on-write, so processes that load the same dataset (the driver
and every client actor) share its pages and a client touches only the images it uses."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

from fedsparse.data.image_data import ImageData
from fedsparse.errors import DataError

CACHE_ENV = "FEDSPARSE_CACHE"
FORMAT_VERSION = 2
ARRAYS = ("train_x", "train_y", "test_x", "test_y")

log = logging.getLogger(__name__)


def cache_dir() -> Path:
    """FEDSPARSE_CACHE if set, else ~/.cache/fedsparse."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "fedsparse").expanduser()


def source_signature(source: Path) -> str:
    """Size and mtime of an archive, or file count, total size and newest mtime under a folder."""
    if source.is_file():
        stat = source.stat()
        return f"file:{stat.st_size}:{stat.st_mtime_ns}"
    count = size = newest = 0
    for folder, _, files in os.walk(source):
        for file in files:
            stat = os.stat(os.path.join(folder, file))
            count, size, newest = count + 1, size + stat.st_size, max(newest, stat.st_mtime_ns)
    return f"dir:{count}:{size}:{newest}"


def cache_path(name: str, source: Path) -> Path:
    key = f"v{FORMAT_VERSION}|{name}|{source.resolve()}|{source_signature(source)}"
    return cache_dir() / f"{name}-{hashlib.sha1(key.encode()).hexdigest()[:16]}"


def load_cached(path: Path, name: str) -> ImageData | None:
    """The cached dataset, or None if absent; a corrupt cache is reported and ignored (then rebuilt)."""
    if not path.is_dir():
        return None
    try:
        arrays = {key: torch.from_numpy(np.load(path / f"{key}.npy", mmap_mode="c", allow_pickle=False))
                  for key in ARRAYS}
        classes = [str(c) for c in np.load(path / "classes.npy", allow_pickle=False)]
        return ImageData(name=name, classes=classes, **arrays)
    except (OSError, ValueError, KeyError, EOFError, DataError) as err:
        log.warning("dataset cache %s is unreadable (%s); rebuilding it", path, err)
        return None


def save_cached(path: Path, data: ImageData) -> None:
    """Write atomically (temp folder + rename); a cache that cannot be written only logs a warning."""
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}-", suffix=".tmp")
        for key in ARRAYS:
            np.save(os.path.join(tmp, f"{key}.npy"), getattr(data, key).numpy(), allow_pickle=False)
        np.save(os.path.join(tmp, "classes.npy"), np.array(data.classes, dtype=str), allow_pickle=False)
        os.chmod(tmp, 0o755)
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except OSError as err:
        log.warning("cannot write dataset cache %s (%s); the next load decodes again", path, err)
        if tmp is not None and os.path.exists(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
