"""Dataset loading (image folders, archives, cache, errors), augmentation, and the real datasets."""

from __future__ import annotations

import os
import re
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import fedsparse.data.load as load_module
from fedsparse.data import ImageData, load_dataset, make_split, normalize, random_crop_flip
from fedsparse.data.cache import cache_path
from fedsparse.errors import ConfigError, DataError

TINY_CLASSES = ["ant", "bee", "cat"]  # written out of order below; must load sorted
TRAIN_PER_CLASS, TEST_PER_CLASS = 4, 2


def _write_tree(
    root: Path, name: str, mode: str = "RGB", size: tuple[int, int] = (8, 6)
) -> dict[str, np.ndarray]:
    """`root/name/{train,test}/<class>/<i>.png` with random pixels; returns the expected stacked arrays."""
    rng = np.random.default_rng(len(name))
    expected: dict[str, list] = {"train_x": [], "train_y": [], "test_x": [], "test_y": []}
    for split, count in (("train", TRAIN_PER_CLASS), ("test", TEST_PER_CLASS)):
        for label, cls in reversed(list(enumerate(TINY_CLASSES))):
            folder = root / name / split / cls
            folder.mkdir(parents=True)
            for i in range(count):
                shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
                pixels = rng.integers(0, 256, shape, dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{i:03d}.png")
                chw = pixels.transpose(2, 0, 1) if mode == "RGB" else pixels[None]
                expected[f"{split}_x"].append((label, i, chw))
    out = {}
    for split in ("train", "test"):
        items = sorted(expected[f"{split}_x"], key=lambda t: (t[0], t[1]))
        out[f"{split}_x"] = np.stack([chw for _, _, chw in items])
        out[f"{split}_y"] = np.array([label for label, _, _ in items])
    return out


def _tar(source: Path, archive: Path) -> Path:
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(source, arcname=source.name)
    return archive


def _assert_matches(data: ImageData, expected: dict[str, np.ndarray]) -> None:
    assert data.classes == TINY_CLASSES
    for key, array in expected.items():
        tensor = getattr(data, key)
        assert tensor.dtype == (torch.uint8 if key.endswith("_x") else torch.int64)
        np.testing.assert_array_equal(tensor.numpy(), array)


@pytest.fixture
def data_cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty FEDSPARSE_CACHE under tmp_path, with FEDSPARSE_DATA unset."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("FEDSPARSE_CACHE", str(cache))
    monkeypatch.delenv("FEDSPARSE_DATA", raising=False)
    return cache


@pytest.fixture
def tiny_cifar_dir(tmp_path: Path, data_cache_dir: Path) -> tuple[Path, dict[str, np.ndarray]]:
    """A data folder holding `cifar10/` as an image-folder tree, plus its expected arrays."""
    root = tmp_path / "data"
    return root, _write_tree(root, "cifar10")


@pytest.fixture
def tiny_cifar_archives(tmp_path: Path, data_cache_dir: Path) -> tuple[Path, dict[str, np.ndarray]]:
    """A data folder holding only `cifar10-tiny.tar.gz` and a decoy `cifar100-x.tar.gz` (grayscale)."""
    trees, root = tmp_path / "trees", tmp_path / "archives"
    root.mkdir()
    expected = _write_tree(trees, "cifar10")
    _write_tree(trees, "cifar100", mode="L")
    _tar(trees / "cifar10", root / "cifar10-tiny.tar.gz")
    _tar(trees / "cifar100", root / "cifar100-x.tar.gz")
    return root, expected


def test_image_folder_loads_sorted_classes_and_exact_pixels(tiny_cifar_dir) -> None:
    root, expected = tiny_cifar_dir
    data = load_dataset("cifar10", root)
    _assert_matches(data, expected)
    assert (data.num_classes, data.in_channels, data.image_size) == (3, 3, (6, 8))


def test_archive_matches_folder_and_skips_longer_name(tiny_cifar_archives) -> None:
    root, expected = tiny_cifar_archives
    _assert_matches(load_dataset("cifar10", root), expected)
    other = load_dataset("cifar100", root)
    assert other.in_channels == 1, "cifar100 must come from cifar100-x.tar.gz"


def test_data_dir_may_be_the_archive_or_the_named_folder(tiny_cifar_archives, tiny_cifar_dir) -> None:
    archives, expected = tiny_cifar_archives
    _assert_matches(load_dataset("cifar10", archives / "cifar10-tiny.tar.gz"), expected)
    folder, expected_folder = tiny_cifar_dir
    _assert_matches(load_dataset("cifar10", folder / "cifar10"), expected_folder)


def test_env_var_is_used_without_data_dir(tiny_cifar_dir, monkeypatch) -> None:
    root, expected = tiny_cifar_dir
    monkeypatch.setenv("FEDSPARSE_DATA", str(root))
    _assert_matches(load_dataset("cifar10"), expected)


def test_grayscale_images_give_one_channel(tmp_path, data_cache_dir) -> None:
    expected = _write_tree(tmp_path, "mnist", mode="L")
    data = load_dataset("mnist", tmp_path)
    assert data.in_channels == 1
    np.testing.assert_array_equal(data.train_x.numpy(), expected["train_x"])


def test_cache_is_written_atomically_and_reused(tiny_cifar_archives, data_cache_dir, monkeypatch) -> None:
    root, expected = tiny_cifar_archives
    load_dataset("cifar10", root)
    expected_file = cache_path("cifar10", root / "cifar10-tiny.tar.gz")
    assert list(data_cache_dir.iterdir()) == [expected_file], "one cache folder, no temp files left"

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again instead of using the cache")

    monkeypatch.setattr(load_module, "read_image_folder", no_decoding)
    _assert_matches(load_dataset("cifar10", root), expected)


def test_corrupt_cache_is_rebuilt(tiny_cifar_archives, data_cache_dir) -> None:
    root, expected = tiny_cifar_archives
    load_dataset("cifar10", root)
    (cached,) = data_cache_dir.iterdir()
    images = cached / "train_x.npy"
    images.write_bytes(images.read_bytes()[:100])
    _assert_matches(load_dataset("cifar10", root), expected)
    _assert_matches(load_dataset("cifar10", root), expected)
    assert images.stat().st_size > 1000


def test_changed_archive_invalidates_cache(tiny_cifar_archives, tmp_path) -> None:
    root, _ = tiny_cifar_archives
    assert len(load_dataset("cifar10", root).train_y) == 3 * TRAIN_PER_CLASS
    extra = tmp_path / "trees" / "cifar10" / "train" / "ant" / "999.png"
    Image.fromarray(np.zeros((6, 8, 3), np.uint8)).save(extra)
    _tar(tmp_path / "trees" / "cifar10", root / "cifar10-tiny.tar.gz")
    assert len(load_dataset("cifar10", root).train_y) == 3 * TRAIN_PER_CLASS + 1


@pytest.mark.parametrize("damage", ["cut 20%", "cut 50%", "cut 95%", "flip byte"])
def test_damaged_archive_raises_data_error_naming_it(tiny_cifar_archives, damage: str) -> None:
    root, _ = tiny_cifar_archives
    archive = root / "cifar10-tiny.tar.gz"
    blob = bytearray(archive.read_bytes())
    if damage == "flip byte":
        blob[len(blob) // 2] ^= 0xFF
    else:
        blob = blob[: len(blob) * int(damage[4:-1]) // 100]
    archive.write_bytes(bytes(blob))
    with pytest.raises(DataError, match="cifar10-tiny.tar.gz"):
        load_dataset("cifar10", root)


def test_undecodable_image_raises_data_error_naming_it(tiny_cifar_dir) -> None:
    root, _ = tiny_cifar_dir
    (root / "cifar10" / "train" / "bee" / "001.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="bee/001.png"):
        load_dataset("cifar10", root)


def test_mixed_image_sizes_raise_data_error_naming_the_file(tiny_cifar_dir) -> None:
    root, _ = tiny_cifar_dir
    Image.fromarray(np.zeros((5, 5, 3), np.uint8)).save(root / "cifar10" / "test" / "cat" / "odd.png")
    with pytest.raises(DataError, match="cat/odd.png.*5x5"):
        load_dataset("cifar10", root)


def test_unknown_name_is_a_config_error_listing_names(data_cache_dir) -> None:
    with pytest.raises(ConfigError, match="cifar10, cifar100, fashion_mnist, mnist"):
        load_dataset("imagenet")


def test_missing_data_explains_where_it_looked(tmp_path, data_cache_dir) -> None:
    with pytest.raises(DataError, match=rf"{re.escape(str(tmp_path))}/mnist.*FEDSPARSE_DATA"):
        load_dataset("mnist", tmp_path, download=False)
    with pytest.raises(DataError, match="does not exist"):
        load_dataset("mnist", tmp_path / "nowhere")


def test_torchvision_copy_is_converted_to_nchw_uint8(tmp_path, data_cache_dir, monkeypatch) -> None:
    import torchvision.datasets

    class FakeMNIST:
        classes = [str(i) for i in range(10)]

        def __init__(self, root: str, train: bool, download: bool) -> None:
            n = 6 if train else 3
            self.data = torch.arange(n * 28 * 28, dtype=torch.int64).reshape(n, 28, 28).to(torch.uint8)
            self.targets = torch.arange(n) % 10

    monkeypatch.setattr(torchvision.datasets, "MNIST", FakeMNIST)
    data = load_dataset("mnist", download=False)
    assert data.train_x.shape == (6, 1, 28, 28) and data.test_x.shape == (3, 1, 28, 28)
    assert data.train_y.dtype == torch.int64


def test_mean_std_match_direct_computation(tiny_cifar_dir) -> None:
    data = load_dataset("cifar10", tiny_cifar_dir[0])
    x = data.train_x.to(torch.float64) / 255
    np.testing.assert_allclose(data.mean, x.mean(dim=(0, 2, 3)).numpy(), rtol=1e-9)
    np.testing.assert_allclose(data.std, x.std(dim=(0, 2, 3), correction=0).numpy(), rtol=1e-9)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_random_crop_flip_takes_shifted_or_mirrored_windows(dtype) -> None:
    x = torch.randint(1, 255, (16, 3, 10, 12)).to(dtype)
    out = random_crop_flip(x, torch.Generator().manual_seed(0), padding=3)
    assert out.shape == x.shape and out.dtype == dtype
    padded = torch.nn.functional.pad(x, (3, 3, 3, 3))
    for img, src in zip(out, padded, strict=True):
        windows = [src[:, dy : dy + 10, dx : dx + 12] for dy in range(7) for dx in range(7)]
        assert any(torch.equal(img, w) or torch.equal(img, w.flip(-1)) for w in windows)
    again = random_crop_flip(x, torch.Generator().manual_seed(0), padding=3)
    assert torch.equal(out, again)
    assert not torch.equal(out, random_crop_flip(x, torch.Generator().manual_seed(1), padding=3))


def test_normalize_scales_per_channel() -> None:
    x = torch.tensor([0, 255], dtype=torch.uint8).view(1, 2, 1, 1).expand(2, 2, 3, 3)
    out = normalize(x, mean=(0.0, 0.5), std=(1.0, 0.25))
    assert out.dtype == torch.float32
    assert torch.allclose(out[:, 0], torch.zeros(1)) and torch.allclose(out[:, 1], torch.full((1,), 2.0))
    with pytest.raises(TypeError, match="uint8"):
        normalize(out, (0.0,), (1.0,))


# --- the real datasets, when FEDSPARSE_DATA points at them (cache: FEDSPARSE_CACHE or ~/.cache/fedsparse) ---

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
real_data = pytest.mark.skipif(not os.environ.get("FEDSPARSE_DATA"), reason="FEDSPARSE_DATA is not set")


def _timed_load(name: str) -> tuple[ImageData, float]:
    start = time.perf_counter()
    data = load_dataset(name, download=False)
    return data, time.perf_counter() - start


@pytest.fixture(scope="session")
def real_cifar10() -> ImageData:
    data, seconds = _timed_load("cifar10")
    print(f"\ncifar10 first load in this session: {seconds:.2f} s")
    return data


@real_data
def test_real_cifar10(real_cifar10: ImageData) -> None:
    data = real_cifar10
    assert data.classes == CIFAR10_CLASSES
    assert data.train_x.shape == (50_000, 3, 32, 32) and data.test_x.shape == (10_000, 3, 32, 32)
    assert data.train_x.dtype == torch.uint8
    assert (data.train_y.bincount() == 5000).all() and (data.test_y.bincount() == 1000).all()
    again, seconds = _timed_load("cifar10")
    print(f"cifar10 cached load: {seconds:.2f} s")
    assert torch.equal(again.test_x, data.test_x)


@real_data
def test_real_cifar10_feddst_pathological_split(real_cifar10: ImageData) -> None:
    train, test = real_cifar10.train_y.numpy(), real_cifar10.test_y.numpy()
    split = make_split("pathological", train, test, num_clients=400, seed=0)
    assert (split.sizes() == 40).all()
    assert ((split.label_histogram(train) > 0).sum(axis=1) <= 2).all()
    print(f"pathological 400-client split: {split.summary(train)}")


@real_data
def test_real_mnist() -> None:
    data, seconds = _timed_load("mnist")
    print(f"\nmnist load: {seconds:.2f} s")
    assert data.classes == [str(d) for d in range(10)]
    assert data.train_x.shape == (60_000, 1, 28, 28) and data.test_x.shape == (10_000, 1, 28, 28)
    assert data.train_y.bincount()[:2].tolist() == [5923, 6742]
