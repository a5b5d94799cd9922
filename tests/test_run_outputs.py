"""What a run folder holds besides metrics.jsonl: metrics.csv, the experiment loggers (TensorBoard
event files, read back with TensorBoard's own reader), the figures (inspected as matplotlib
objects) and the split heatmap; last, one real run through Flower + Ray with
`logger=tensorboard`."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from fedsparse.config import config_from_yaml, load_config
from fedsparse.data.splits import make_split
from fedsparse.errors import ConfigError
from fedsparse.metrics.loggers import LOGGERS, RunLogger, open_logger
from fedsparse.metrics.loggers.tensorboard import TAGS, TENSORBOARD_DIR
from fedsparse.metrics.plots import fit_byte_unit, make_plots, run_figures
from fedsparse.metrics.run_folder import CSV_FILE, RunFolder, csv_cells

CIFAR10 = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
FIGURES = ["accuracy_vs_round.png", "accuracy_vs_upload.png", "loss_vs_round.png",
           "bytes_per_round.png", "layer_density.png", "mask_churn.png", "overview.png"]


@pytest.fixture
def run(tmp_path: Path) -> RunFolder:
    return RunFolder.create(str(tmp_path / "out"), "exp", seed=7)


def _row(r: int, scale: float = 1.0) -> dict:
    """A metrics row shaped as the ServerApp writes it (round 0: no training)."""
    row = {"round": r, "upload_bytes": int(62e6 * scale), "download_bytes": int(63e6 * scale),
           "cumulative_upload_bytes": int(62e6 * scale * (r + 1)),
           "cumulative_download_bytes": int(63e6 * scale * (r + 1)), "density": 0.2,
           "upload_bytes_per_client": {"3": 31e6, "8": 31e6},
           "layer_density": {"conv1.weight": 0.8, "fc.weight": 0.1}, "mask_version": 1,
           "round_time_s": 1.5, "wall_time_s": 2.0 + r}
    if r:
        row |= {"train_loss": 2.0 / r * scale, "mask_changes": 10 * r, "clients": [3, 8],
                "failures": {"errors": 0, "rejected": 0, "dropped": r % 2, "missing": 0}}
    if r % 2 == 0:
        row |= {"central_accuracy": 0.02 * r * scale, "client_accuracy": 0.018 * r,
                "central_loss": 2.3 - 0.1 * r}
    return row


def _csv_rows(run: RunFolder) -> list[dict[str, str]]:
    with open(run.path_for(CSV_FILE), newline="") as f:
        return list(csv.DictReader(f))


def _csv_matches_jsonl(run: RunFolder) -> None:
    """metrics.csv holds exactly metrics.jsonl's rows, every scalar value equal."""
    rows, table = run.read_metrics(), _csv_rows(run)
    assert len(table) == len(rows)
    for row, line in zip(rows, table):
        cells = csv_cells(row)
        assert {k: v for k, v in line.items() if v != ""} == {
            k: str(v) for k, v in cells.items() if v is not None}


def _scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar series of a TensorBoard log folder, read back by TensorBoard's reader."""
    events = EventAccumulator(str(folder), size_guidance={"scalars": 0, "tensors": 0})
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)]
            for tag in events.Tags()["scalars"]}


def _events_match_jsonl(run: RunFolder) -> None:
    """Each TAGS series has one point per row holding its key, at step = round, value equal."""
    series = _scalars(run.path_for(TENSORBOARD_DIR))
    rows = run.read_metrics()
    for key, tag in TAGS.items():
        expected = [(r["round"], r[key]) for r in rows if r.get(key) is not None]
        got = series.get(tag, [])
        assert [s for s, _ in got] == [s for s, _ in expected], tag
        assert [v for _, v in got] == pytest.approx([v for _, v in expected], rel=1e-6), tag


# ---- metrics.csv -------------------------------------------------------------------------------


def test_csv_mirrors_jsonl_as_rows_are_appended(run: RunFolder) -> None:
    for r in range(4):
        run.append_metrics(_row(r))
        _csv_matches_jsonl(run)
    header = next(csv.reader(run.path_for(CSV_FILE).open()))
    assert header[:3] == ["round", "central_accuracy", "client_accuracy"]
    assert "failures_dropped" in header and "train_loss" in header  # columns first seen in round 1
    assert not {"upload_bytes_per_client", "layer_density", "clients", "failures"} & set(header)
    second = _csv_rows(run)[1]
    assert second["failures_dropped"] == "1" and second["central_accuracy"] == ""


def test_csv_after_resume_truncation_and_crash_tail(run: RunFolder) -> None:
    for r in range(5):
        run.append_metrics(_row(r))
    run.truncate_metrics_after(2)  # what a resume from the round-2 checkpoint does
    assert [line["round"] for line in _csv_rows(run)] == ["0", "1", "2"]
    with open(run.path_for(CSV_FILE), "a") as f:
        f.write("3,0.5,0.")  # a line cut short by a crash
    for r in (3, 4):
        run.append_metrics(_row(r, scale=0.5))
    assert [line["round"] for line in _csv_rows(run)] == ["0", "1", "2", "3", "4"]
    _csv_matches_jsonl(run)
    run.path_for(CSV_FILE).unlink()
    assert run.write_csv() == run.path_for(CSV_FILE)
    _csv_matches_jsonl(run)


def test_files_lists_the_folder(run: RunFolder) -> None:
    run.write_config("seed: 7\n")
    run.append_metrics(_row(0))
    assert [p.name for p in run.files()] == ["config.yaml", "metrics.csv", "metrics.jsonl"]


# ---- loggers -----------------------------------------------------------------------------------


def test_logger_setting_and_registry(tmp_path: Path) -> None:
    assert LOGGERS.names() == ["none", "tensorboard"]
    assert load_config("cifar_noniid").runtime.logger == "none"
    with pytest.raises(ConfigError, match="logger='wandb' is invalid: must be one of: none, tensorb"):
        load_config("cifar_noniid", ["logger=wandb"])
    run = RunFolder.create(str(tmp_path), "exp", seed=0)
    with open_logger(load_config("cifar_noniid"), run) as logger:
        assert type(logger) is RunLogger
        logger.log(_row(0))
    assert not run.path_for(TENSORBOARD_DIR).exists()


def test_tensorboard_logger_resume_rewrites_without_duplicates(run: RunFolder) -> None:
    cfg = load_config("cifar_noniid", ["logger=tensorboard"])
    with open_logger(cfg, run) as logger:
        for r in range(5):
            run.append_metrics(_row(r))
            logger.log(_row(r))
        _events_match_jsonl(run)  # flushed as each round ends, readable while the run goes on
    # killed after round 4, resumed from the round-2 checkpoint: rounds 3-4 are written again
    # (here with other values, so a stale point would show), then round 5
    run.truncate_metrics_after(2)
    with open_logger(cfg, run) as logger:
        for r in (3, 4, 5):
            run.append_metrics(_row(r, scale=0.5))
            logger.log(_row(r, scale=0.5))
    _events_match_jsonl(run)
    series = _scalars(run.path_for(TENSORBOARD_DIR))
    assert [s for s, _ in series["bytes/cumulative_upload"]] == [0, 1, 2, 3, 4, 5]
    assert series["accuracy/central"][-1] == (4, pytest.approx(0.04))  # the resumed run's value
    assert len(list(run.path_for(TENSORBOARD_DIR).iterdir())) == 1  # one event file
    events = EventAccumulator(str(run.path_for(TENSORBOARD_DIR)))
    events.Reload()
    assert "config/text_summary" in events.Tags()["tensors"]


# ---- figures -----------------------------------------------------------------------------------


def _titles(fig: Figure) -> list[str]:
    return [ax.get_title() for ax in fig.axes]


def _inside(fig: Figure) -> None:
    """Everything `fig` draws (titles, labels, tick labels, legend, colorbar) lies within it."""
    fig.canvas.draw()  # runs the constrained layout
    drawn = fig.get_tightbbox(fig.canvas.get_renderer())  # inches
    width, height = fig.get_size_inches()
    assert drawn.x0 >= -0.01 and drawn.y0 >= -0.01, drawn
    assert drawn.x1 <= width + 0.01 and drawn.y1 <= height + 0.01, (drawn, width, height)


def test_run_figures_content(run: RunFolder) -> None:
    rows = [_row(r) for r in range(21)]
    figures = run_figures(rows, "cifar_noniid-20261121-101500-s0")
    assert list(figures) == FIGURES
    for fig in figures.values():
        assert fig.get_suptitle().startswith("cifar_noniid-20261121-101500-s0")
        _inside(fig)
    upload = figures["accuracy_vs_upload.png"].axes[0]
    assert upload.get_xlabel() == "cumulative upload (GB)"  # 21 x 62 MB
    assert upload.lines[0].get_xdata()[-1] == pytest.approx(1.302)
    loss = figures["loss_vs_round.png"].axes[0]
    assert [line.get_label() for line in loss.lines] == ["training (sampled clients, mean)",
                                                         "central test set"]
    assert list(loss.lines[0].get_ydata()) == pytest.approx([2.0 / r for r in range(1, 21)])
    assert figures["bytes_per_round.png"].axes[0].get_ylabel() == "MB per round"
    overview = figures["overview.png"]
    assert _titles(overview) == ["Accuracy vs round", "Accuracy vs cumulative upload", "Loss",
                                 "Bytes per round"]
    assert "20 rounds, final accuracy central 40.0% / clients 36.0%, upload 1.3 GB" in \
        overview.get_suptitle()


def test_make_plots_writes_the_figures(run: RunFolder) -> None:
    for r in range(3):
        run.append_metrics(_row(r))
    assert [p.name for p in make_plots(run)] == FIGURES
    for name in FIGURES:
        assert run.path_for(name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_overview_marks_panels_without_data() -> None:
    rows = [{"round": r, "train_loss": 1.0 / (r + 1)} for r in range(3)]
    figures = run_figures(rows, "x")
    assert list(figures) == ["loss_vs_round.png", "overview.png"]
    empty = [ax for ax in figures["overview.png"].axes if not ax.lines]
    assert len(empty) == 3 and all(ax.texts[0].get_text() == "no data" for ax in empty)
    assert run_figures([], "x") == {}


def test_fit_byte_unit() -> None:
    assert fit_byte_unit(5.2e9) == ("GB", 1e9)
    assert fit_byte_unit(252e6) == ("MB", 1e6)
    assert fit_byte_unit(14_230) == ("kB", 1e3)
    assert fit_byte_unit(0) == ("bytes", 1.0)


@pytest.mark.parametrize(("split", "num_classes", "num_clients", "params"),
                         [("pathological", 10, 400, {}), ("dirichlet", 100, 100, {"alpha": 0.5})])
def test_split_heatmap_names_classes_and_fits(split: str, num_classes: int, num_clients: int,
                                              params: dict) -> None:
    train = np.repeat(np.arange(num_classes), 50_000 // num_classes)
    test = np.repeat(np.arange(num_classes), 10_000 // num_classes)
    clients = make_split(split, train, test, num_clients=num_clients, seed=0, **params)
    classes = CIFAR10 if num_classes == 10 else [f"aquarium_fish_{i}" for i in range(num_classes)]
    fig = clients.heatmap_figure(train, classes, run_name="cifar_noniid-20261121-101500-s0")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == classes
    assert ax.get_title() == ("Train images per client and class\n"
                              f"({num_clients} clients, {num_classes} classes)")
    assert fig.get_suptitle() == "cifar_noniid-20261121-101500-s0"
    _inside(fig)
    with pytest.raises(ValueError, match=f"{num_classes - 1} class names for {num_classes} cl"):
        clients.heatmap_figure(train, classes[1:])


# ---- a real run --------------------------------------------------------------------------------


@pytest.mark.e2e
@pytest.mark.skipif(not os.environ.get("FEDSPARSE_DATA"),
                    reason="needs FEDSPARSE_DATA (real MNIST)")
def test_real_run_writes_csv_events_and_figures(tmp_path: Path) -> None:
    from fedsparse.runner import run_simulation

    cfg = load_config("cifar_noniid", [
        "dataset=mnist", "model=mlp", "num_clients=4", "clients_per_round=2", "rounds=2",
        "local_epochs=1", "eval_every=1", "num_actors=1", "progress=false", "logger=tensorboard",
        "name=outputs", f"output_dir={tmp_path}"])
    run = RunFolder(run_simulation(cfg))
    names = {p.name for p in run.files()}
    assert {"config.yaml", "metrics.jsonl", "metrics.csv", "summary.json", "tensorboard",
            "split_heatmap.png", *FIGURES} <= names
    rows = run.read_metrics()
    assert [r["round"] for r in rows] == [0, 1, 2]
    _csv_matches_jsonl(run)
    _events_match_jsonl(run)
    series = _scalars(run.path_for(TENSORBOARD_DIR))
    assert {"accuracy/central", "accuracy/client_mean", "loss/train", "bytes/upload",
            "bytes/cumulative_download", "mask/density"} <= set(series)
    summary = json.loads(run.path_for("summary.json").read_text())
    assert summary["rounds"] == 2
    saved = (run.path / "config.yaml").read_text()
    assert summary["config_hash"] == cfg.hash() == config_from_yaml(saved).hash() and summary["config_hash"] in saved
    # the real rows through a resume from round 1: round 2 is written again, not duplicated
    run.truncate_metrics_after(1)
    with open_logger(cfg, run) as logger:
        run.append_metrics(rows[2])
        logger.log(rows[2])
    _csv_matches_jsonl(run)
    _events_match_jsonl(run)
