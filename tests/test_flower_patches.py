"""The Flower patches (fedsparse/fl/flower_patches/): the only place that touches Flower's
internals, and switching them off changes no metric."""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

import pytest
import torch
from flwr.app import ConfigRecord, Message, MessageType, RecordDict

from fedsparse.config import Config, load_config
from fedsparse.fl import flower_patches
from fedsparse.fl.payload import encode_state, float_state
from fedsparse.fl.wire import message_bytes, outgoing_sizes
from fedsparse.models import build_model, prunable_names
from fedsparse.runner import run_simulation
from fedsparse.sparse.mask import Mask

PACKAGE = Path(flower_patches.__file__).parent
SOURCE = PACKAGE.parent.parent
INTERNALS = re.compile(r"flwr\.server\.superlink|flwr\.supercore|_chunks|vce_api")
WALL_CLOCK = {"round_time_s", "wall_time_s", "aggregate_s", "eval_s", "client_time_s"}
RUN = {"dataset": "mnist", "model": "mnist_net", "num_clients": 4, "clients_per_round": 2,
       "rounds": 2, "local_epochs": 1, "batch_size": 32, "readjust_every": 1, "readjust_until": 2,
       "alpha": 0.05, "eval_every": 1, "num_actors": 1, "progress": False, "score_samples": 64,
       "strategy": "feddst", "criterion": "snip", "name": "patches"}


def test_flower_internals_are_used_only_inside_the_patches_package() -> None:
    found = [f"{path.relative_to(SOURCE)}:{n}" for path in sorted(SOURCE.rglob("*.py"))
             if PACKAGE not in path.parents
             for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if INTERNALS.search(line)]
    assert found == []
    assert any(INTERNALS.search(p.read_text(encoding="utf-8")) for p in PACKAGE.glob("*.py"))


def test_the_environment_and_the_version_switch_them_off(monkeypatch: pytest.MonkeyPatch) -> None:
    import flwr

    monkeypatch.setattr(flower_patches, "_off_by_config", False)
    monkeypatch.delenv(flower_patches.ENV_VAR, raising=False)
    assert flower_patches.enabled(Config()) is flower_patches.supported()
    assert not flower_patches.enabled(Config().with_(flower_patches=False))
    monkeypatch.setenv(flower_patches.ENV_VAR, "0")
    assert not flower_patches.enabled(Config()) and not flower_patches.enabled()
    monkeypatch.setenv(flower_patches.ENV_VAR, "1")
    monkeypatch.setattr(flwr, "__version__", "1.99.0")
    assert not flower_patches.supported() and not flower_patches.enabled(Config())


def _message(seed: int) -> Message:
    """A real sparse model message: mnist_net at density 0.2, positions and values encoded as the
    strategies send them, plus a config record."""
    model = build_model("mnist_net", 10, 1, 28, seed=seed)
    names = prunable_names(model)
    g = torch.Generator().manual_seed(seed)
    mask = Mask({n: torch.rand(p.shape, generator=g) < 0.2 for n, p in model.named_parameters()
                 if n in names})
    state = {n: t * mask[n] if n in names else t for n, t in float_state(model).items()}
    arrays = encode_state(state, names, mask, send_positions=True, codec="auto", value_dtype="float32")
    return Message(RecordDict({"arrays": arrays, "config": ConfigRecord({"round": 1, "lr": 0.01})}),
                   dst_node_id=1, message_type=MessageType.TRAIN)


@pytest.mark.parametrize("seed", [0, 1])
def test_message_bytes_are_the_same_with_the_patches_on_and_off(
        seed: int, monkeypatch: pytest.MonkeyPatch, task_identity: None) -> None:  # noqa: ARG001
    if not flower_patches.supported():
        pytest.skip("the Flower patches do not apply to this flwr version")
    monkeypatch.setattr(flower_patches, "_off_by_config", False)
    counted = {}
    for env in ("1", "0"):
        monkeypatch.setenv(flower_patches.ENV_VAR, env)
        messages = [_message(seed), _message(seed + 10)]
        counted[env] = ([message_bytes(m) for m in messages], outgoing_sizes(messages, "arrays"),
                        message_bytes(messages[0]))  # again, after outgoing_sizes released views
    assert counted["1"] == counted["0"]
    values = messages[0].content["arrays"]["values"].numpy().nbytes
    assert counted["0"][0][0] > values  # values, positions, headers and the config record


def _same(got: object, want: object) -> bool:
    """Equal, floats to 1e-9 relative (the last bits of a sum may depend on threads)."""
    if isinstance(got, float) and isinstance(want, float):
        return math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(got, dict) and isinstance(want, dict):
        return got.keys() == want.keys() and all(_same(got[k], want[k]) for k in want)
    if isinstance(got, list) and isinstance(want, list):
        return len(got) == len(want) and all(map(_same, got, want))
    return got == want


def _rows(run: Path) -> list[dict]:
    return [{k: v for k, v in json.loads(line).items() if k not in WALL_CLOCK}
            for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.e2e
@pytest.mark.skipif(not os.environ.get("FEDSPARSE_DATA"), reason="needs FEDSPARSE_DATA (real MNIST)")
@pytest.mark.skipif(not flower_patches.enabled(), reason="compares a run with the patches on: "
                    "FEDSPARSE_FLOWER_PATCHES=0 forces them off")
def test_a_simulation_with_the_patches_off_gives_the_same_metrics(tmp_path: Path) -> None:
    """Identical rows: without the engine's mapping the server asks each node its partition
    (`query.partition`), and those transfers are summary.json's `node_discovery`, not the rows'."""
    runs, found = {}, {}
    for on in ("true", "false"):  # output paths of equal length: the node setup carries the path
        out = tmp_path / on[:2]
        run = run_simulation(load_config("cifar_noniid", [
            f"{k}={v}" for k, v in {**RUN, "output_dir": out, "flower_patches": on}.items()]))
        runs[on] = _rows(run)
        found[on] = json.loads((run / "summary.json").read_text())["node_discovery"]
    on, off = runs["true"], runs["false"]
    assert found["true"] == {"upload_bytes": 0, "download_bytes": 0}  # the engine told the mapping
    assert found["false"]["upload_bytes"] > 0 and found["false"]["download_bytes"] > 0
    assert _same(off, on)
    assert len(on) == RUN["rounds"] + 1
