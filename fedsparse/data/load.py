"""`load_dataset`: local image folder or archive (decoded once, cached), else torchvision download."""

from __future__ import annotations

import os
from pathlib import Path

from fedsparse.data.cache import cache_dir, cache_path, load_cached, save_cached
from fedsparse.data.image_data import ImageData
from fedsparse.data.image_folder import read_image_folder
from fedsparse.data.locate import DATA_ENV, data_root, find_local
from fedsparse.data.sources import DATASETS
from fedsparse.errors import DataError


def load_dataset(
    name: str, data_dir: str | os.PathLike[str] | None = None, download: bool = True
) -> ImageData:
    """Load dataset `name` (one of `DATASETS.names()`).

    Looks in `data_dir`, else in $FEDSPARSE_DATA, for `<name>/<train|test>/<class>/<image>` or an
    archive of that layout (`<name>.tar.gz`, `<name>-*.tar.gz`, `<name>_*.tar.gz`); `data_dir` may
    also be the archive or the `<name>` folder itself. Local images are decoded once and cached
    under $FEDSPARSE_CACHE (default ~/.cache/fedsparse). Without a local copy, an existing
    torchvision copy under the data folder or `<cache>/torchvision` is used, else (if `download`)
    torchvision downloads it into `<cache>/torchvision`. Raises ConfigError for an unknown name and
    DataError when the data cannot be found or read.
    """
    DATASETS.get(name)  # ConfigError for an unknown name, before anything else
    root = data_root(data_dir)
    looked: list[str] = []
    if root is not None:
        local, looked = find_local(name, root)
        if local is not None:
            cached = cache_path(name, local)
            data = load_cached(cached, name)
            if data is None:
                data = read_image_folder(name, local)
                save_cached(cached, data)
            return data
    return _fetch_torchvision(name, root, download, looked)


def _fetch_torchvision(name: str, root: Path | None, download: bool, looked: list[str]) -> ImageData:
    """A torchvision copy under the data folder or `<cache>/torchvision`, else a download into the latter."""
    source = DATASETS.get(name)
    downloads = cache_dir() / "torchvision"
    roots = ([root] if root is not None and root.is_dir() else []) + [downloads]
    errors = []
    for tv_root in roots:
        try:
            return source.fetch(tv_root, download=False)
        except (OSError, RuntimeError, ValueError):
            errors.append(f"no torchvision copy in {tv_root}")
    if download:
        try:
            return source.fetch(downloads, download=True)
        except (OSError, RuntimeError, ValueError) as err:
            errors.append(f"torchvision download into {downloads} failed ({type(err).__name__}: {err})")
    else:
        errors.append("download=False")
    where = "; ".join(looked) if looked else f"no local folder (neither data_dir nor {DATA_ENV} is set)"
    raise DataError(
        f"dataset '{name}' not found. Looked at: {where}; {'; '.join(errors)}. "
        f"Put '{name}/train|test/<class>/<image>' or an archive '{name}.tar.gz' of that layout "
        f"in a folder and set {DATA_ENV}=<that folder> (or pass data_dir)."
    )
