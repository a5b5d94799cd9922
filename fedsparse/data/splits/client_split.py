"""`ClientSplit`: which train and test images each client holds."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np


@dataclass(eq=False)
class ClientSplit:
    """Per-client int64 index arrays into the train set (disjoint) and the test set (may overlap)."""

    train: list[np.ndarray]
    test: list[np.ndarray]
    num_classes: int

    def __post_init__(self) -> None:
        if len(self.train) != len(self.test):
            raise ValueError(f"{len(self.train)} train index arrays but {len(self.test)} test index arrays")
        self.train = [np.asarray(idx, dtype=np.int64) for idx in self.train]
        self.test = [np.asarray(idx, dtype=np.int64) for idx in self.test]

    @property
    def num_clients(self) -> int:
        return len(self.train)

    def sizes(self) -> np.ndarray:
        """Train images per client."""
        return np.array([len(idx) for idx in self.train], dtype=np.int64)

    def test_sizes(self) -> np.ndarray:
        """Test images per client."""
        return np.array([len(idx) for idx in self.test], dtype=np.int64)

    def label_histogram(self, train_labels: np.ndarray) -> np.ndarray:
        """[clients x classes] count of each client's train images per class."""
        labels = np.asarray(train_labels)
        return np.stack([np.bincount(labels[idx], minlength=self.num_classes) for idx in self.train])

    def summary(self, train_labels: np.ndarray) -> dict[str, float]:
        """Min/mean/max of train images, classes held and test images per client."""
        classes = (self.label_histogram(train_labels) > 0).sum(axis=1)
        stats = {"size": self.sizes(), "classes": classes, "test_size": self.test_sizes()}
        out: dict[str, float] = {"num_clients": self.num_clients, "num_classes": self.num_classes}
        for key, values in stats.items():
            out[f"{key}_min"] = int(values.min())
            out[f"{key}_mean"] = float(values.mean())
            out[f"{key}_max"] = int(values.max())
        return out

    def save_heatmap(self, train_labels: np.ndarray, path: str | os.PathLike[str]) -> None:
        """PNG heat map of `label_histogram` (clients down, classes across)."""
        from matplotlib.figure import Figure

        hist = self.label_histogram(train_labels)
        width = min(12.0, max(4.0, 0.1 * self.num_classes + 3))
        fig = Figure(figsize=(width, min(10.0, max(3.0, 0.02 * self.num_clients + 2))))
        ax = fig.add_subplot()
        image = ax.imshow(hist, aspect="auto", interpolation="nearest", cmap="viridis")
        ax.set_xlabel("class")
        ax.set_ylabel("client")
        ax.set_title(f"train images per client and class ({self.num_clients} clients)")
        fig.colorbar(image, ax=ax, label="images")
        fig.tight_layout()
        fig.savefig(path, dpi=100)
