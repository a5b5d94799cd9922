"""`learned`: a pruning-at-initialisation score learned from iterative pruning (AutoSparse,
Liu et al., arXiv 2408.14757).

A small MLP (`Scorer`) maps each weight's initial features to a predicted survival label (how long
the weight survived iterative rewind pruning on some model, min-max scaled to [0, 1]); higher =
keep. Features (`weight_features`), per masked tensor, each divided by its root mean square over
that tensor so that the scorer sees the same scale in every layer and model:
  w (the initial value), g (dL/dw summed over the scoring batches), w * g.
`fedsparse/bench/autosparse.py` makes the labels and trains a scorer; it is saved as a plain .npz
of float arrays (no pickle) and loaded here from the criterion option `scorer_path` (set by the
top-level config key `scorer_path`, see `LearnedOptions`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from fedsparse.errors import ConfigError
from fedsparse.plugin_options import option
from fedsparse.sparse.criteria.gradients import (finish, loss_gradient, masked_leaves,
                                                 named_weights, require_batches)
from fedsparse.sparse.criteria.registry import CRITERIA, Batches
from fedsparse.sparse.criteria.side_effects import no_side_effects
from fedsparse.sparse.mask import Mask

FEATURES = ("w", "g", "wg")
FORMAT = "fedsparse-learned-scorer-v1"


def _rms(t: Tensor) -> Tensor:
    return t.float().square().mean().sqrt().clamp_min(1e-30)


def weight_features(weights: Mapping[str, Tensor], grads: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Per tensor, an (entries, 3) float32 matrix of the RMS-normalised w, g and w * g."""
    out = {}
    for n, w in weights.items():
        w, g = w.detach().float().reshape(-1), grads[n].detach().float().reshape(-1)
        wg = w * g
        out[n] = torch.stack([w / _rms(w), g / _rms(g), wg / _rms(wg)], dim=1)
    return out


class Scorer(nn.Module):
    """features (N, 3) -> predicted label (N,): Linear-ReLU layers, a Linear output."""

    def __init__(self, hidden: Sequence[int] = (32, 32), n_features: int = len(FEATURES)) -> None:
        super().__init__()
        widths = (n_features, *hidden, 1)
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
            layers.append(nn.Linear(a, b))
            if i < len(widths) - 2:
                layers.append(nn.ReLU())
        self.net = nn.Sequential(*layers)
        self.info: dict[str, float] = {}

    @property
    def hidden(self) -> tuple[int, ...]:
        return tuple(m.out_features for m in self.net if isinstance(m, nn.Linear))[:-1]

    def forward(self, features: Tensor) -> Tensor:
        return self.net(features).squeeze(-1)

    def save(self, path: str | Path, **info: float) -> None:
        """Write an .npz of float arrays and metadata (no pickle); `info` adds scalar metadata."""
        linears = [m for m in self.net if isinstance(m, nn.Linear)]
        arrays: dict[str, np.ndarray] = {
            "format": np.asarray(FORMAT),
            "features": np.asarray(FEATURES),
            "info_keys": np.asarray(sorted({**self.info, **info}) or [""]),
            "info_values": np.asarray([float({**self.info, **info}[k])
                                       for k in sorted({**self.info, **info})], dtype=np.float64),
        }
        for i, m in enumerate(linears):
            arrays[f"weight{i}"] = m.weight.detach().cpu().numpy().astype(np.float32)
            arrays[f"bias{i}"] = m.bias.detach().cpu().numpy().astype(np.float32)
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as f:
            np.savez(f, **arrays)

    @classmethod
    def load(cls, path: str | Path) -> Scorer:
        """Read a scorer written by `save`; ConfigError naming the file if it is not one."""
        try:
            with np.load(path, allow_pickle=False) as z:
                if "format" not in z or str(z["format"]) != FORMAT:
                    raise ValueError(f"not a {FORMAT} file")
                if tuple(str(f) for f in z["features"]) != FEATURES:
                    raise ValueError(f"features {list(z['features'])} != {list(FEATURES)}")
                count = sum(1 for k in z.files if k.startswith("weight"))
                weights = [z[f"weight{i}"] for i in range(count)]
                biases = [z[f"bias{i}"] for i in range(count)]
                keys = [str(k) for k in z["info_keys"] if str(k)]
                info = dict(zip(keys, (float(v) for v in z["info_values"])))
        except (OSError, ValueError, KeyError) as e:
            raise ConfigError(f"scorer_path={str(path)!r}: cannot load a learned scorer ({e})") from None
        shapes_ok = (count >= 1 and weights[0].ndim == 2 and weights[0].shape[1] == len(FEATURES)
                     and weights[-1].shape[0] == 1
                     and all(w.shape[0] == b.shape[0] for w, b in zip(weights, biases))
                     and all(a.shape[0] == b.shape[1] for a, b in zip(weights[:-1], weights[1:])))
        if not shapes_ok or not all(np.isfinite(a).all() for a in weights + biases):
            raise ConfigError(f"scorer_path={str(path)!r}: inconsistent or non-finite scorer arrays")
        with torch.random.fork_rng(devices=[]):  # the weights are overwritten just below
            scorer = cls(tuple(w.shape[0] for w in weights[:-1]))
        linears = [m for m in scorer.net if isinstance(m, nn.Linear)]
        with torch.no_grad():
            for m, w, b in zip(linears, weights, biases):
                m.weight.copy_(torch.from_numpy(w))
                m.bias.copy_(torch.from_numpy(b))
        scorer.info = info
        return scorer.eval()


_CACHE: dict[tuple[str, float], Scorer] = {}


def load_scorer(path: str | Path) -> Scorer:
    """`Scorer.load` cached per (path, modification time)."""
    try:
        key = (os.path.abspath(path), os.path.getmtime(path))
    except OSError as e:
        raise ConfigError(f"scorer_path={str(path)!r}: {e.strerror}") from None
    if key not in _CACHE:
        _CACHE[key] = Scorer.load(path)
    return _CACHE[key]


def initial_features(model: nn.Module, names: list[str], batches: Batches,
                     mask: Mask | None = None) -> dict[str, Tensor]:
    """`weight_features` of `names` at the model's current (masked) weights over `batches`."""
    with no_side_effects(model, batchnorm_train=True):
        leaves = masked_leaves(named_weights(model, names), mask)
        grads = loss_gradient(model, leaves, batches)
    return weight_features(leaves, grads)


@dataclass(frozen=True)
class LearnedOptions:
    """Options of `learned`: the scorer file, read from the top-level config key `scorer_path`
    (kept there for existing YAML files), not from `criterion_options`."""

    scorer_path: str | None = option(None, "the scorer (python -m simulations.train_scorer)",
                                     config_key="scorer_path")


@CRITERIA.register("learned", options=LearnedOptions)
def learned_scores(model: nn.Module, names: list[str], batches: Batches | None,
                   mask: Mask | None = None, generator: torch.Generator | None = None,
                   scorer_path: str | None = None) -> dict[str, Tensor]:
    """The saved scorer's prediction for every weight; higher = keep."""
    if scorer_path is None:
        raise ConfigError("criterion 'learned' needs scorer_path (a scorer saved by "
                          "python -m simulations.train_scorer)")
    scorer = load_scorer(scorer_path)
    batches = require_batches("learned", batches)
    features = initial_features(model, names, batches, mask)
    weights = named_weights(model, names)
    with torch.no_grad():
        scores = {n: scorer(f.cpu()).reshape(weights[n].shape).to(weights[n].device)
                  for n, f in features.items()}
    return finish(scores, mask)
