"""Nodes without a round trip to every node: the engine's partition mapping reaches the server,
each node gets its setup with its first message, and the `query.partition` fallback (engines that
do not tell the mapping) gives the same rounds."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from queue import Queue

import pytest
from flwr.app import ConfigRecord, Context, Message, RecordDict
from flwr.server.superlink.fleet.vce import vce_api
from flwr.server.superlink.linkstate import LinkStateFactory
from flwr.supercore.constant import FLWR_IN_MEMORY_DB_NAME
from flwr.supercore.object_store import ObjectStoreFactory
from flwr.superlink.federation import NoOpFederationManager
from flwr.superlink.grid.inmemory_grid import InMemoryGrid

from fedsparse.config import config_from_yaml, load_config
from fedsparse.fl import flower_patches, node_directory
from fedsparse.fl.flower_patches import vce_queue
from fedsparse.fl.node_setup import SETUP
from fedsparse.fl.wire import message_bytes
from fedsparse.runner import run_simulation

DATA = pytest.mark.skipif(not os.environ.get("FEDSPARSE_DATA"), reason="needs FEDSPARSE_DATA (real MNIST)")
WALL_CLOCK = {"round_time_s", "wall_time_s", "aggregate_s", "eval_s", "client_time_s"}
# seed 1, 10 clients, 3 per round: {2, 3, 4} then {4, 5, 9}: client 4 already holds its setup
RUN = {"dataset": "mnist", "model": "mlp", "num_clients": 10, "clients_per_round": 3,
       "rounds": 2, "local_epochs": 1, "batch_size": 16, "readjust_every": 1, "readjust_until": 2,
       "eval_every": 2, "num_actors": 1, "seed": 1, "progress": False, "name": "setup"}


def _state_factory() -> LinkStateFactory:
    return LinkStateFactory(FLWR_IN_MEMORY_DB_NAME, NoOpFederationManager(), ObjectStoreFactory())


def test_the_engine_mapping_reaches_only_the_server_of_the_same_simulation(monkeypatch) -> None:  # noqa: ANN001
    """Flower registers the nodes (node i: partition-id i) and starts the extractor with that
    mapping; the server of the grid on that LinkState gets it, any other grid gets None."""
    monkeypatch.setattr(vce_api, "add_messages_to_queue", vce_queue._ORIGINAL)
    other = InMemoryGrid(_state_factory())
    assert vce_queue.engine_partitions(other, 5.0) is None  # extractor not installed: at once
    vce_queue.install()
    factory = _state_factory()
    grid = InMemoryGrid(factory)
    mapping = vce_api._register_nodes(num_nodes=5, state_factory=factory)  # noqa: SLF001
    assert sorted(mapping.values()) == list(range(5))
    stop = threading.Event()
    extractor = threading.Thread(target=vce_api.add_messages_to_queue,
                                 args=(factory.state(), Queue(), mapping, stop))
    extractor.start()
    try:
        assert vce_queue.engine_partitions(grid, 30.0) == mapping
        assert vce_queue.engine_partitions(other, 0.1) is None
    finally:
        stop.set()
        extractor.join()


@DATA
def test_a_node_keeps_the_setup_of_its_first_message(task_identity: None, tmp_path: Path) -> None:  # noqa: ARG001
    from fedsparse.fl import client_app

    yaml_text = load_config("cifar_noniid", [f"{k}={v}" for k, v in RUN.items()]).to_yaml()
    context = Context(run_id=7, node_id=5, node_config={"partition-id": 3, "num-partitions": 10},
                      state=RecordDict(), run_config={})
    bare = Message(RecordDict({"config": ConfigRecord({"round": 1})}), dst_node_id=5, message_type="train")
    with pytest.raises(RuntimeError, match="no setup"):
        client_app._setup(bare, context)  # noqa: SLF001
    setup = ConfigRecord({"yaml": yaml_text, "state_dir": str(tmp_path / "nodes")})
    first = Message(RecordDict({"config": ConfigRecord({"round": 1}), SETUP: setup}), dst_node_id=5,
                    message_type="train")
    got, exp, pid = client_app._setup(first, context)  # noqa: SLF001
    assert (got, pid, exp.cfg.data.num_clients) == (yaml_text, 3, 10)
    assert client_app._setup(bare, context)[0] == yaml_text  # noqa: SLF001 - kept in context.state
    assert client_app._mask_store(context, exp, pid).folder == tmp_path / "nodes" / "3"  # noqa: SLF001


def _rows(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _run(out: Path) -> tuple[Path, list[Message]]:
    """A real simulation; returns its run folder and every message the server pushed."""
    pushed: list[Message] = []
    push = InMemoryGrid.push_messages

    def spy(self, messages):  # noqa: ANN001, ANN202
        messages = list(messages)
        pushed.extend(messages)
        return push(self, messages)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(InMemoryGrid, "push_messages", spy)
        run = run_simulation(load_config("cifar_noniid", [f"{k}={v}" for k, v in
                                                          {**RUN, "output_dir": out}.items()]))
    return run, pushed


PATCHES = pytest.mark.skipif(not flower_patches.enabled(), reason="the engine's mapping needs the Flower "
                             "patches (FEDSPARSE_FLOWER_PATCHES=0 forces them off)")


@pytest.fixture(scope="module")
def engine_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Message]]:
    return _run(tmp_path_factory.mktemp("engine"))


@DATA
@pytest.mark.e2e
@PATCHES
def test_no_message_before_round_1_and_the_setup_rides_first_messages(engine_run) -> None:  # noqa: ANN001
    run, pushed = engine_run
    rows = _rows(run)
    assert {m.metadata.message_type for m in pushed} == {"train"}  # no query to any node
    assert rows[0]["upload_bytes"] == rows[0]["download_bytes"] == 0
    by_round = {r: [m for m in pushed if m.content["config"]["round"] == r] for r in (1, 2)}
    node_of = {m.metadata.dst_node_id: int(p) for r, msgs in by_round.items()
               for m, p in zip(msgs, rows[r]["clients"])}
    carried = {r: sorted(node_of[m.metadata.dst_node_id] for m in msgs if SETUP in m.content)
               for r, msgs in by_round.items()}
    assert carried == {1: [2, 3, 4], 2: [5, 9]}  # 4 kept its setup from round 1
    setup = dict(by_round[1][0].content[SETUP])
    wire = config_from_yaml((run / "config.yaml").read_text()).wire_yaml()  # the non-default keys
    assert setup == {"yaml": wire, "state_dir": str((run / "nodes").resolve())}
    for r, msgs in by_round.items():
        assert rows[r]["failures"] == {"errors": 0, "rejected": 0, "dropped": 0, "missing": 0}
        assert rows[r]["download_bytes_per_client"] == {
            str(node_of[m.metadata.dst_node_id]): message_bytes(m) for m in msgs}


@DATA
@pytest.mark.e2e
@PATCHES
def test_asking_every_node_gives_the_same_rounds(engine_run, monkeypatch: pytest.MonkeyPatch,  # noqa: ANN001
                                                tmp_path_factory: pytest.TempPathFactory) -> None:
    """Where the engine does not say which node holds which partition (as on the Deployment
    Engine), the server asks every node once; those transfers are summary.json's
    `node_discovery`, and the rows equal the engine run's."""
    monkeypatch.setattr(flower_patches, "engine_partitions", lambda grid, timeout: None)
    run, pushed = _run(tmp_path_factory.mktemp("asking"))  # as long a path as "engine": same setup size
    asked = [m for m in pushed if m.metadata.message_type == node_directory.PROBE]
    assert len(asked) == RUN["num_clients"] and len({m.metadata.dst_node_id for m in asked}) == 10
    found = json.loads((run / "summary.json").read_text())["node_discovery"]
    assert found["download_bytes"] == sum(message_bytes(m) for m in asked)
    assert found["upload_bytes"] > 0
    assert json.loads((engine_run[0] / "summary.json").read_text())["node_discovery"] == {
        "upload_bytes": 0, "download_bytes": 0}

    def rounds(rows: list[dict]) -> list[dict]:
        return [{k: v for k, v in r.items() if k not in WALL_CLOCK} for r in rows]

    assert rounds(_rows(run)) == rounds(_rows(engine_run[0]))
