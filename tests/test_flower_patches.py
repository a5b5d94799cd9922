"""The Flower patches (fedsparse/fl/flower_patches/): the only place that touches Flower's
internals, and switching them off changes no metric."""

from __future__ import annotations

import json
import os
import re
import shutil
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
from tests import test_golden as golden

PACKAGE = Path(flower_patches.__file__).parent
SOURCE = PACKAGE.parent.parent
INTERNALS = re.compile(r"flwr\.server\.superlink|flwr\.supercore|_chunks|vce_api")


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


@pytest.mark.e2e
@pytest.mark.skipif(not os.environ.get("FEDSPARSE_DATA"), reason="needs FEDSPARSE_DATA (real MNIST)")
def test_a_simulation_with_the_patches_off_gives_the_golden_metrics() -> None:
    """The golden `feddst` run (recorded with the patches on) again with them off: the same rows.
    Without the engine's mapping the server asks each node its partition (`query.partition`), and
    those transfers are summary.json's `node_discovery`, not the rows'."""
    out = golden.fixed_length_dir()
    try:
        settings = {**golden.SMALL, **golden.METHODS["feddst"], "output_dir": out, "flower_patches": False}
        run = run_simulation(load_config("cifar_noniid", [f"{k}={v}" for k, v in settings.items()]))
        rows = [golden.strip(json.loads(line)) for line in (run / "metrics.jsonl").read_text().splitlines()]
        golden.same(rows, json.loads((golden.GOLDEN / "method-feddst.json").read_text()), "patches off")
        found = json.loads((run / "summary.json").read_text())["node_discovery"]
        assert found["upload_bytes"] > 0 and found["download_bytes"] > 0
    finally:
        shutil.rmtree(out, ignore_errors=True)
