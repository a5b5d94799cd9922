"""The input-importance map of induced feature selection as a PNG (Agg, no display needed)."""

from __future__ import annotations

from pathlib import Path

import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def save_importance_map(importance: torch.Tensor, kept_index: torch.Tensor, path: Path,
                        title: str = "") -> Path:
    """Left: importance (summed first-layer scores per input); right: the kept inputs.

    `importance` is (H, W) for pixels of one channel (shown as an image), (C, H, W) (shown
    averaged over channels; an input pixel position counts as kept if any channel is), or (C,)
    (shown as bars).
    """
    imp = importance.detach().float().cpu()
    kept = torch.zeros(imp.numel(), dtype=torch.bool)
    kept[kept_index.long().cpu()] = True
    kept = kept.reshape(imp.shape)
    fig = Figure(figsize=(8.0, 3.8), layout="constrained")
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2)
    if imp.dim() == 1:
        left.bar(range(len(imp)), imp.numpy())
        right.bar(range(len(kept)), kept.float().numpy())
        left.set(xlabel="input channel", ylabel="importance")
        right.set(xlabel="input channel", ylabel="kept")
    else:
        if imp.dim() == 3:
            imp, kept = imp.mean(dim=0), kept.any(dim=0)
        shown = left.imshow(imp.numpy(), cmap="viridis")
        fig.colorbar(shown, ax=left, shrink=0.8)
        right.imshow(kept.float().numpy(), cmap="gray", vmin=0, vmax=1)
        for ax in (left, right):
            ax.set_xticks([])
            ax.set_yticks([])
    left.set_title("input importance")
    right.set_title(f"kept inputs: {int(kept_index.numel())} of {importance.numel()}")
    if title:
        fig.suptitle(title)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path
