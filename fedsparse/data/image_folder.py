"""Decode an image-folder dataset (`<split>/<class>/<image>`, as a directory or tar archive)."""

from __future__ import annotations

import gzip
import io
import tarfile
import zlib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import numpy as np
import torch
from PIL import Image

from fedsparse.data.image_data import ImageData
from fedsparse.errors import DataError

SPLITS = ("train", "test")
IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".ppm", ".pgm", ".tif", ".tiff"}
)
GRAY_MODES = frozenset({"L", "1", "LA", "La", "I", "I;16", "F"})

# (split, class, file name) -> decoded image, H x W (gray) or H x W x 3 (RGB)
Decoded = dict[tuple[str, str, str], np.ndarray]


def read_image_folder(name: str, source: Path) -> ImageData:
    """Decode every image of `source` (directory or archive); class order = sorted class folder names."""
    images = _decode_archive(source) if source.is_file() else _decode_directory(source)
    return _assemble(name, source, images)


def _layout_key(parts: tuple[str, ...]) -> tuple[str, str, str] | None:
    """(split, class, file) if the path ends in `<train|test>/<class>/<image>`, else None."""
    if len(parts) < 3 or any(p.startswith(".") or p == "__MACOSX" for p in parts):
        return None
    split, cls, file = parts[-3:]
    if split not in SPLITS or PurePosixPath(file).suffix.lower() not in IMAGE_SUFFIXES:
        return None
    return split, cls, file


def _decode(blob: bytes, where: str) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(blob)) as image:
            mode = "L" if image.mode in GRAY_MODES else "RGB"
            return np.asarray(image if image.mode == mode else image.convert(mode))
    except (OSError, SyntaxError, ValueError) as err:
        raise DataError(f"cannot decode image {where}: {err}") from err


def _decode_directory(root: Path) -> Decoded:
    images: Decoded = {}
    for path in sorted(root.glob("*/*/*")):
        key = _layout_key(path.relative_to(root).parts)
        if key is not None and path.is_file():
            images[key] = _decode(path.read_bytes(), str(path))
    return images


def _archive_members(archive: Path) -> Iterator[tuple[tuple[str, str, str], bytes]]:
    with open(archive, "rb") as raw:
        gzipped = raw.read(2) == b"\x1f\x8b"
        raw.seek(0)
        stream = gzip.GzipFile(fileobj=raw) if gzipped else raw
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for member in tar:
                key = _layout_key(PurePosixPath(member.name).parts) if member.isfile() else None
                if key is not None:
                    yield key, tar.extractfile(member).read()
        # tarfile stops quietly at a header cut short; reading the gzip stream to its end
        # raises EOFError if the file was truncated there
        while stream.read(1 << 20):
            pass


def _decode_archive(archive: Path) -> Decoded:
    images: Decoded = {}
    try:
        for key, blob in _archive_members(archive):
            images[key] = _decode(blob, f"{archive}:{'/'.join(key)}")
    except (tarfile.TarError, EOFError, zlib.error, OSError) as err:
        raise DataError(
            f"archive {archive} is corrupt or truncated ({type(err).__name__}: {err}); replace the file"
        ) from err
    return images


def _assemble(name: str, source: Path, images: Decoded) -> ImageData:
    by_split = {split: sorted(k for k in images if k[0] == split) for split in SPLITS}
    for split, keys in by_split.items():
        if not keys:
            raise DataError(f"no images found under {source} in the layout [<name>/]{split}/<class>/<image>")
    classes = sorted({cls for _, cls, _ in by_split["train"]})
    unknown = sorted({cls for _, cls, _ in by_split["test"]} - set(classes))
    if unknown:
        raise DataError(f"{source}: test classes {unknown} have no train folder; train classes are {classes}")
    first = images[by_split["train"][0]]
    channels = 3 if any(a.ndim == 3 for a in images.values()) else 1
    label_of = {cls: i for i, cls in enumerate(classes)}
    arrays: dict[str, torch.Tensor] = {}
    for split, keys in by_split.items():
        x = np.empty((len(keys), channels, *first.shape[:2]), dtype=np.uint8)
        for i, key in enumerate(keys):
            image = images[key]
            if image.shape[:2] != first.shape[:2]:
                raise DataError(
                    f"{source}: image {'/'.join(key)} is {image.shape[0]}x{image.shape[1]} pixels, "
                    f"expected {first.shape[0]}x{first.shape[1]} like {'/'.join(by_split['train'][0])}"
                )
            x[i] = image.transpose(2, 0, 1) if image.ndim == 3 else image
        arrays[f"{split}_x"] = torch.from_numpy(x)
        arrays[f"{split}_y"] = torch.tensor([label_of[cls] for _, cls, _ in keys], dtype=torch.int64)
    return ImageData(name=name, classes=classes, **arrays)
