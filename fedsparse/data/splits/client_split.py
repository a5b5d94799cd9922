"""`ClientSplit`: which train and test images each client holds."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure


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

    def heatmap_figure(self, train_labels: np.ndarray, classes: Sequence[str] | None = None,
                       run_name: str | None = None) -> Figure:
        """Heat map of `label_histogram` (clients down, classes across, named by `classes` when
        given), under `run_name` when given."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        if classes is not None and len(classes) != self.num_classes:
            raise ValueError(f"{len(classes)} class names for {self.num_classes} classes")
        hist = self.label_histogram(train_labels)
        longest = max(map(len, classes), default=0) if classes is not None else 0
        many = self.num_classes > 20  # names stand upright, else slanted (if longer than 2)
        label_room = 0.07 * longest if many else 0.05 * longest  # inches below the axes
        width = min(16.0, max(6.4, 0.13 * self.num_classes + 2.5))
        height = min(8.0, max(4.4, 0.015 * self.num_clients + 3)) + label_room
        fig = Figure(figsize=(width, height), layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        image = ax.imshow(hist, aspect="auto", interpolation="nearest", cmap="viridis")
        if classes is not None:
            slanted = longest > 2 and not many
            ax.set_xticks(range(self.num_classes), list(classes),
                          rotation=(90 if many else 45) if longest > 2 else 0,
                          ha="right" if slanted else "center",
                          rotation_mode="anchor" if slanted else "default",
                          fontsize=max(4.0, min(9.0, 600 / self.num_classes)))
        ax.yaxis.get_major_locator().set_params(integer=True)
        ax.set_xlabel("class")
        ax.set_ylabel("client")
        ax.set_title(f"Train images per client and class\n"
                     f"({self.num_clients} clients, {self.num_classes} classes)")
        if run_name:
            fig.suptitle(run_name, fontsize="medium")
        fig.colorbar(image, ax=ax, label="images")
        return fig

    def save_heatmap(self, train_labels: np.ndarray, path: str | os.PathLike[str],
                     classes: Sequence[str] | None = None, run_name: str | None = None) -> None:
        """PNG of `heatmap_figure`."""
        self.heatmap_figure(train_labels, classes, run_name).savefig(path, dpi=120)
