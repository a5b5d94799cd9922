"""Find a local copy of a dataset: an image-folder directory or a tar archive of one."""

from __future__ import annotations

import os
import re
from pathlib import Path

from fedsparse.errors import DataError

DATA_ENV = "FEDSPARSE_DATA"
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar")


def data_root(data_dir: str | os.PathLike[str] | None) -> Path | None:
    """The `data_dir` argument, else the FEDSPARSE_DATA environment variable, else None."""
    if data_dir is not None:
        root, origin = Path(data_dir).expanduser(), "data_dir"
    elif os.environ.get(DATA_ENV):
        root, origin = Path(os.environ[DATA_ENV]).expanduser(), DATA_ENV
    else:
        return None
    if not root.exists():
        raise DataError(
            f"{origin}={str(root)!r} does not exist; it must be a data folder or a dataset archive"
        )
    return root


def is_image_folder(path: Path) -> bool:
    """True if `path` holds `train/` and `test/` class folders."""
    return (path / "train").is_dir() and (path / "test").is_dir()


def is_archive(path: Path) -> bool:
    return path.is_file() and path.name.endswith(ARCHIVE_SUFFIXES)


def find_local(name: str, root: Path) -> tuple[Path | None, list[str]]:
    """Locate dataset `name` under `root`; returns (path or None, the places looked at).

    `root` may be an archive, the `<name>` folder itself (with train/ and test/), or a folder
    holding `<name>/` or an archive named `<name>.tar.gz` or `<name>-*.tar.gz` / `<name>_*.tar.gz`
    (also .tgz and .tar). A folder wins over archives; several archives: the first by name.
    """
    if root.is_file():
        return (root, []) if is_archive(root) else (None, [f"{root} (not a .tar.gz/.tgz/.tar archive)"])
    if is_image_folder(root):
        return root, []
    folder = root / name
    looked = [f"{folder}/{{train,test}}/<class>/<image>"]
    if is_image_folder(folder):
        return folder, looked
    pattern = re.compile(rf"{re.escape(name)}([-_].*)?({'|'.join(map(re.escape, ARCHIVE_SUFFIXES))})")
    looked.append(f"{root}/{name}[-_*].tar.gz|.tgz|.tar")
    archives = sorted(p for p in root.iterdir() if pattern.fullmatch(p.name) and p.is_file())
    return (archives[0] if archives else None), looked
