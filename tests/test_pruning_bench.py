"""The pruning bench: config and presets, the grid, the resumable CSV, the report, the scorer and
pre-training helpers, and one real cell on MNIST through Flower + Ray."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from fedsparse.bench.autosparse import ScorerConfig, fit_scorer, min_max, spearman
from fedsparse.bench.cli import main, run_bench
from fedsparse.bench.config import load_bench_config, parse_split
from fedsparse.bench.grid import Cell, cell_config, cells
from fedsparse.bench.pretrain import held_out
from fedsparse.bench.results import COLUMNS, append_row, done_keys, read_rows
from fedsparse.errors import ConfigError

torch.set_num_threads(1)


def _bench(tmp_path: Path, *args: str):
    return load_bench_config(["preset=small", f"output_dir={tmp_path / 'bench'}", *args])


def _fake_run(calls: list[Cell]):
    def run(cell: Cell, cfg) -> dict:  # noqa: ANN001
        calls.append(cell)
        assert cfg.train.strategy == "fixed_mask" and cfg.mask.criterion == cell.method
        assert cfg.mask.sparsity == cell.sparsity and cfg.mask.scoring == cell.scoring
        acc = 0.5 + 0.01 * len(calls)
        return {**dict(zip(("method", "sparsity", "split", "scoring", "ablation", "variant",
                            "seed"), cell.key)),
                "central_accuracy": acc, "client_accuracy": acc, "upload_bytes": 1000,
                "download_bytes": 2000, "wall_time_s": 1.0, "run_folder": "x"}
    return run


def test_small_preset_grid() -> None:
    bench = load_bench_config(["preset=small"])
    grid = cells(bench)
    # 3 criteria x 3 splits at server scoring, plus snip (reads data) scored federated
    assert len(grid) == 12
    assert {c.split for c in grid} == {"iid", "dirichlet_0.5", "pathological"}
    assert {c.method for c in grid if c.scoring == "federated"} == {"snip"}
    cfg = cell_config(bench, grid[0], "/tmp/cells")
    assert (cfg.data.dataset, cfg.model.model, cfg.train.rounds, cfg.data.num_clients) == ("mnist", "mlp", 3, 10)
    d = next(c for c in grid if c.split == "dirichlet_0.5")
    cfg = cell_config(bench, d, "/tmp/cells")
    assert cfg.data.split == "dirichlet" and cfg.data.dirichlet_alpha == 0.5
    assert parse_split("pathological") == {"split": "pathological"}


def test_every_preset_loads() -> None:
    for preset in ("small", "table", "ablation", "ifs", "learned", "pretrain"):
        bench = load_bench_config([f"preset={preset}"])
        assert cells(bench), preset
    assert len(cells(load_bench_config(["preset=table"]))) == 66


@pytest.mark.parametrize("arg,field", [
    ("criteria=[snip,obd]", "criteria"), ("sparsities=[0.9,1.0]", "sparsities"),
    ("splits=[dirichlet_0]", "splits"), ("preset=huge", "preset"), ("fl.criterion=snip", "fl.criterion"),
    ("rounds=0", "rounds"), ("bogus=1", "bogus"), ("scorings=[local]", "scorings"),
    ("ablations=[flip]", "ablations"), ("fl.lr=-1", "lr"), ("pretrain.epochs=0", "pretrain.epochs"),
])
def test_bad_keys_exit_2_naming_the_field(arg: str, field: str, capsys: pytest.CaptureFixture) -> None:
    assert main([arg]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and field in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_resume_skips_finished_cells(tmp_path: Path) -> None:
    bench = _bench(tmp_path)
    calls: list[Cell] = []
    assert run_bench(bench, _fake_run(calls)) == 0
    grid = cells(bench)
    assert calls == grid
    out = tmp_path / "bench"
    rows = read_rows(out / "results.csv")
    assert len(rows) == len(grid) and list(rows[0]) == list(COLUMNS)
    assert (out / "summary.md").is_file()
    pngs = sorted((out / "heatmaps").glob("*.png"))
    assert [p.name for p in pngs] == ["heatmap_s0.9_federated_none_base.png",
                                     "heatmap_s0.9_server_none_base.png"]
    # a second call runs nothing
    calls.clear()
    assert run_bench(_bench(tmp_path), _fake_run(calls)) == 0
    assert calls == []
    # drop the last two rows, leave a line cut short by a crash: only those two cells run again
    lines = (out / "results.csv").read_text().splitlines(keepends=True)
    (out / "results.csv").write_text("".join(lines[:-2]) + lines[-2][:7])
    assert len(done_keys(out / "results.csv")) == len(grid) - 2
    assert run_bench(_bench(tmp_path), _fake_run(calls)) == 0
    assert calls == grid[-2:]
    assert len(read_rows(out / "results.csv")) == len(grid)
    # a larger grid in the same folder only runs the new cells
    calls.clear()
    assert run_bench(_bench(tmp_path, "sparsities=[0.9,0.98]"), _fake_run(calls)) == 0
    assert {c.sparsity for c in calls} == {0.98} and len(calls) == len(grid)


def test_rows_made_with_other_settings_do_not_count(tmp_path: Path) -> None:
    calls: list[Cell] = []
    assert run_bench(_bench(tmp_path), _fake_run(calls)) == 0
    calls.clear()
    assert run_bench(_bench(tmp_path, "fl.lr=0.02"), _fake_run(calls)) == 0
    assert calls == cells(_bench(tmp_path))   # every cell again: its run config changed
    calls.clear()
    assert run_bench(_bench(tmp_path, "fl.num_actors=2"), _fake_run(calls)) == 0
    assert calls == []                         # execution-only settings do not matter
    summary = (tmp_path / "bench" / "summary.md").read_text()
    assert summary.count("| random | 0.9 | iid |") == 1  # the report keeps one row per cell


def test_a_failing_cell_is_left_for_the_next_call(tmp_path: Path) -> None:
    calls: list[Cell] = []
    ok = _fake_run(calls)

    def flaky(cell: Cell, cfg) -> dict:  # noqa: ANN001
        if cell.method == "magnitude" and cell.split == "iid":
            raise RuntimeError("ray fell over")
        return ok(cell, cfg)

    assert run_bench(_bench(tmp_path), flaky) == 1
    keys = done_keys(tmp_path / "bench" / "results.csv")
    assert len(keys) == len(cells(_bench(tmp_path))) - 1
    calls.clear()
    assert run_bench(_bench(tmp_path), ok) == 0
    assert [(c.method, c.split) for c in calls] == [("magnitude", "iid")]


def test_csv_with_other_columns_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "results.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(Exception, match="columns"):
        append_row(path, {"method": "snip"})


def test_report_tables_hold_the_rows(tmp_path: Path) -> None:
    bench = _bench(tmp_path)
    run_bench(bench, _fake_run([]))
    text = (tmp_path / "bench" / "summary.md").read_text()
    assert "| method | iid | dirichlet_0.5 | pathological |" in text
    with open(tmp_path / "bench" / "results.csv") as f:
        first = next(csv.DictReader(f))
    assert f"{100 * float(first['central_accuracy']):.1f}" in text


def test_highest_sparsity_within_one_point_of_dense() -> None:
    from fedsparse.bench.report import within_one_point

    def rows(variant: str, curve: dict[float, float]) -> list[dict[str, str]]:
        return [{"method": "magnitude", "split": "pathological", "scoring": "server",
                 "ablation": "none", "variant": variant, "sparsity": f"{s:g}",
                 "central_accuracy": str(a)} for s, a in curve.items()]

    found = within_one_point(rows("scratch", {0.0: 0.90, 0.5: 0.895, 0.8: 0.85, 0.9: 0.895})
                             + rows("pretrained", {0.0: 0.95, 0.5: 0.96, 0.8: 0.941, 0.9: 0.90})
                             + rows("no_dense", {0.5: 0.9}))
    assert {f["key"][-1]: f["highest"] for f in found} == {"scratch": 0.5, "pretrained": 0.8}


def test_scorer_fit_reports_a_held_out_loss() -> None:
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(4000, 3, generator=g)
    labels = torch.sigmoid(2 * feats[:, 0].abs() - 1)  # learnable from |w|
    scorer, m = fit_scorer(feats, labels, ScorerConfig(scorer_epochs=30, scorer_batch=256,
                                                       scorer_lr=0.01, hidden=[16]))
    assert m["val_weights"] == 800 and m["train_weights"] == 3200
    assert m["val_mse"] < 0.2 * m["val_mse_predict_mean"]
    assert m["val_spearman"] > 0.9
    assert min_max({"a": torch.tensor([2, 4]), "b": torch.tensor([3])}).tolist() == [0.0, 1.0, 0.5]
    assert spearman(torch.tensor([1.0, 2, 3]), torch.tensor([10.0, 20, 30])) == pytest.approx(1.0)


def test_held_out_images_are_outside_every_split() -> None:
    class E:  # the two fields `held_out` reads
        def __init__(self, parts: list[np.ndarray]) -> None:
            self.split = type("S", (), {"train": parts})()
            self.data = type("D", (), {"train_y": torch.zeros(10)})()

    out = held_out([E([np.array([0, 1]), np.array([5])]), E([np.array([2, 5])])])
    assert out.tolist() == [3, 4, 6, 7, 8, 9]


def test_unknown_variant_key_names_the_variant() -> None:
    with pytest.raises(ConfigError, match="variants.v.seed"):
        load_bench_config(["variants={v: {seed: 1}}"])


@pytest.mark.e2e
@pytest.mark.skipif(not os.environ.get("FEDSPARSE_DATA"), reason="needs FEDSPARSE_DATA (real MNIST)")
def test_one_real_cell_through_flower(tmp_path: Path) -> None:
    """One bench cell (SNIP, 0.9 sparsity, half the input pixels kept) on real MNIST, as a user
    starts it: CSV row, run folder with the mask artifacts, heatmap, summary, and a quiet console
    (no Flower DEBUG records); a rerun skips it."""
    args = ["preset=small", f"output_dir={tmp_path}", "criteria=[snip]", "sparsities=[0.9]",
            "splits=[pathological]", "scorings=[server]", "rounds=1",
            "variants={half: {input_keep: 0.5}}", "fl.num_clients=4", "fl.clients_per_round=2",
            "fl.samples_per_class=50"]
    proc = subprocess.run([sys.executable, "-m", "simulations.pruning_bench", *args], capture_output=True,
                          text=True, timeout=600, cwd=Path(__file__).resolve().parent.parent)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "DEBUG" not in proc.stdout + proc.stderr, proc.stderr[-2000:]
    rows = read_rows(tmp_path / "results.csv")
    assert len(rows) == 1
    row = rows[0]
    assert (row["method"], row["split"], row["variant"]) == ("snip", "pathological", "half")
    assert 0.1 < float(row["central_accuracy"]) <= 1.0
    assert int(row["upload_bytes"]) > 0 and int(row["inputs_kept"]) == 392
    assert int(row["macs_inputs_removed"]) < int(row["macs_dense"])
    run = Path(row["run_folder"])
    for name in ("summary.json", "initial_mask.npz", "initial_mask.json", "input_importance.png"):
        assert (run / name).is_file(), name
    assert (tmp_path / "heatmaps" / "heatmap_s0.9_server_none_half.png").is_file()
    assert main(args) == 0  # resumed: nothing to run
    assert len(read_rows(tmp_path / "results.csv")) == 1
