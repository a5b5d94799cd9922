"""On-disk cache of decoded datasets: one uncompressed .npz per (dataset, source file, size, mtime)."""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import torch

from fedsparse.data.image_data import ImageData
from fedsparse.errors import DataError

CACHE_ENV = "FEDSPARSE_CACHE"
FORMAT_VERSION = 1
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
    return cache_dir() / f"{name}-{hashlib.sha1(key.encode()).hexdigest()[:16]}.npz"


def load_cached(path: Path, name: str) -> ImageData | None:
    """The cached dataset, or None if absent; a corrupt file is reported and ignored (then rebuilt)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as stored:
            arrays = {key: torch.from_numpy(stored[key]) for key in ARRAYS}
            classes = [str(c) for c in stored["classes"]]
        return ImageData(name=name, classes=classes, **arrays)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, DataError) as err:
        log.warning("dataset cache %s is unreadable (%s); rebuilding it", path, err)
        return None


def save_cached(path: Path, data: ImageData) -> None:
    """Write atomically (temp file + os.replace); a cache that cannot be written only logs a warning."""
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=".tmp")
        with os.fdopen(fd, "wb") as file:
            arrays = {key: getattr(data, key).numpy() for key in ARRAYS}
            np.savez(file, classes=np.array(data.classes, dtype=str), **arrays)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as err:
        log.warning("cannot write dataset cache %s (%s); the next load decodes again", path, err)
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
