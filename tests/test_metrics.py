"""Run folder durability, plots, evaluation, progress lines and summaries."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from fedsparse.errors import ConfigError, DataError
from fedsparse.metrics.evaluate import ClientTestSets, evaluate
from fedsparse.metrics.plots import compare_plot, make_plots
from fedsparse.metrics.progress import RoundProgress, duration
from fedsparse.metrics.run_folder import RunFolder
from fedsparse.metrics.summary import summarize, summary_lines

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def run(tmp_path: Path) -> RunFolder:
    return RunFolder.create(str(tmp_path / "out"), "exp", seed=7)


# ---- RunFolder ---------------------------------------------------------------------------------


def test_create_names_folder_and_adds_suffix_when_taken(tmp_path: Path, monkeypatch) -> None:
    import fedsparse.metrics.run_folder as rf

    class FrozenClock:
        @staticmethod
        def now():
            from datetime import datetime

            return datetime(2024, 5, 6, 7, 8, 9)

    monkeypatch.setattr(rf, "datetime", FrozenClock)
    a = RunFolder.create(str(tmp_path), "exp", seed=3)
    b = RunFolder.create(str(tmp_path), "exp", seed=3)
    c = RunFolder.create(str(tmp_path), "exp", seed=3)
    assert a.path.name == "exp-20240506-070809-s3"
    assert b.path.name == "exp-20240506-070809-s3-1"
    assert c.path.name == "exp-20240506-070809-s3-2"
    assert all(p.path.is_dir() for p in (a, b, c))


def test_create_rejects_bad_name_and_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        RunFolder.create(str(tmp_path), "a/b", seed=0)
    with pytest.raises(DataError):
        RunFolder(tmp_path / "nope")


def test_append_and_read_back_with_numpy_torch_and_nan(run: RunFolder) -> None:
    run.append_metrics({"round": 1, "central_accuracy": np.float32(0.5), "loss": float("nan")})
    run.append_metrics(
        {
            "round": np.int64(2),
            "central_accuracy": torch.tensor(0.75),
            "layer_density": {"fc.weight": torch.tensor(0.25, dtype=torch.float64)},
            "per_client": np.array([1, 2]),
            "loss": np.float64("inf"),
            "ok": np.bool_(True),
        }
    )
    rows = run.read_metrics()
    assert rows == [
        {"round": 1, "central_accuracy": 0.5, "loss": None},
        {
            "round": 2,
            "central_accuracy": 0.75,
            "layer_density": {"fc.weight": 0.25},
            "per_client": [1, 2],
            "loss": None,
            "ok": True,
        },
    ]
    raw = run.path_for("metrics.jsonl").read_text()
    assert raw.count("\n") == 2 and "NaN" not in raw and "null" in raw
    assert type(rows[1]["round"]) is int


def test_append_rejects_unserialisable_value(run: RunFolder) -> None:
    with pytest.raises(TypeError, match="object"):
        run.append_metrics({"round": 1, "x": object()})
    assert run.read_metrics() == []


def test_append_fsyncs_every_line(run: RunFolder, monkeypatch) -> None:
    import fedsparse.metrics.run_folder as rf

    synced = []  # the files fsync'd (metrics.csv, derived data, is written without)
    real_fsync = rf.os.fsync
    monkeypatch.setattr(rf.os, "fsync", lambda fd: (synced.append(Path(f"/proc/self/fd/{fd}").resolve().name),
                                                    real_fsync(fd)))
    for r in range(3):
        run.append_metrics({"round": r})
    assert synced.count("metrics.jsonl") == 3


def test_crash_partial_line_ignored_then_repaired_by_next_append(run: RunFolder) -> None:
    run.append_metrics({"round": 1, "central_accuracy": 0.1})
    run.append_metrics({"round": 2, "central_accuracy": 0.2})
    with open(run.path_for("metrics.jsonl"), "a") as f:
        f.write('{"round": 3, "central_acc')  # killed mid-write
    assert [r["round"] for r in run.read_metrics()] == [1, 2]
    # a fresh RunFolder on the same path (resume) appends cleanly after the cut
    resumed = RunFolder(run.path)
    resumed.append_metrics({"round": 3, "central_accuracy": 0.3})
    assert [r["round"] for r in resumed.read_metrics()] == [1, 2, 3]
    assert run.path_for("metrics.jsonl").read_text().endswith('"central_accuracy": 0.3}\n')


def test_partial_only_line_is_dropped(run: RunFolder) -> None:
    run.path_for("metrics.jsonl").write_text('{"rou')
    assert run.read_metrics() == []
    run.append_metrics({"round": 1})
    assert run.read_metrics() == [{"round": 1}]


def test_corrupt_middle_line_is_an_error(run: RunFolder) -> None:
    run.path_for("metrics.jsonl").write_text('{"round": 1}\nnot json\n{"round": 2}\n')
    with pytest.raises(DataError, match=r"metrics.jsonl:2"):
        run.read_metrics()


def test_read_metrics_without_file(run: RunFolder) -> None:
    assert run.read_metrics() == []


def test_truncate_metrics_after(run: RunFolder) -> None:
    for r in range(1, 6):
        run.append_metrics({"round": r, "v": r * 10})
    run.truncate_metrics_after(3)
    assert run.read_metrics() == [{"round": 1, "v": 10}, {"round": 2, "v": 20}, {"round": 3, "v": 30}]
    run.append_metrics({"round": 4, "v": 41})
    assert [r["v"] for r in run.read_metrics()] == [10, 20, 30, 41]
    assert [p.name for p in run.path.iterdir() if p.name.endswith(".tmp")] == []


def test_config_and_summary_files(run: RunFolder) -> None:
    run.write_config("seed: 7\nrounds: 3\n")
    run.write_summary({"best": np.float32(0.5), "loss": float("nan"), "rounds": 3})
    run.write_summary({"best": 0.75, "rounds": 4})  # overwrite in place
    assert run.path_for("config.yaml").read_text() == "seed: 7\nrounds: 3\n"
    assert json.loads(run.path_for("summary.json").read_text()) == {"best": 0.75, "rounds": 4}
    assert sorted(p.name for p in run.path.iterdir()) == ["config.yaml", "summary.json"]
    assert run.path_for("x.pt") == run.path / "x.pt"


# ---- plots -------------------------------------------------------------------------------------


def _synthetic_rows(n: int = 6) -> list[dict]:
    rows = []
    for r in range(1, n + 1):
        row = {
            "round": r,
            "cumulative_upload_bytes": r * 2_500_000,
            "cumulative_download_bytes": r * 3_000_000,
            "layer_density": {"conv1.weight": 1.0 - 0.05 * r, "fc.weight": 0.5},
            "mask_changes": 100 - r,
            "density": 0.2,
            "round_time_s": 1.5,
        }
        if r % 2 == 0:
            row |= {"central_accuracy": 0.1 * r, "client_accuracy": 0.09 * r}
        rows.append(row)
    return rows


def _assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert len(data) > 1000 and data.startswith(PNG_MAGIC)


def test_make_plots_writes_all_pngs(run: RunFolder) -> None:
    for row in _synthetic_rows():
        run.append_metrics(row)
    paths = make_plots(run)
    assert [p.name for p in paths] == [
        "accuracy_vs_round.png",
        "accuracy_vs_upload.png",
        "layer_density.png",
        "mask_churn.png",
        "overview.png",
    ]
    for p in paths:
        assert p.parent == run.path
        _assert_png(p)


def test_make_plots_skips_plots_without_data(run: RunFolder) -> None:
    for row in _synthetic_rows():
        for key in ("layer_density", "mask_changes", "cumulative_upload_bytes"):
            row.pop(key)
        run.append_metrics(row)
    paths = make_plots(run)
    assert [p.name for p in paths] == ["accuracy_vs_round.png", "overview.png"]
    assert not run.path_for("mask_churn.png").exists()
    assert not run.path_for("layer_density.png").exists()


def test_make_plots_on_empty_run(run: RunFolder) -> None:
    assert make_plots(run) == []


def test_compare_plot(tmp_path: Path) -> None:
    rows = _synthetic_rows()
    slower = [dict(r, cumulative_upload_bytes=r["cumulative_upload_bytes"] * 2) for r in rows]
    out = compare_plot(
        {"fedavg": rows, "sparse": slower, "empty": [{"round": 1}]},
        "cumulative_upload_bytes",
        "central_accuracy",
        tmp_path / "cmp" / "acc_vs_up.png",
        xlabel="upload (MB)",
        ylabel="accuracy",
    )
    assert out == tmp_path / "cmp" / "acc_vs_up.png"
    _assert_png(out)
    with pytest.raises(DataError, match="mask_changes"):
        compare_plot({"a": [{"round": 1}]}, "round", "mask_changes", tmp_path / "x.png")


# ---- evaluate ----------------------------------------------------------------------------------


class LookupModel(nn.Module):
    """Input i (a 1-element float) -> fixed logits row i: predictions are known exactly."""

    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("table", logits)
        self.calls = 0
        self.modes: list[bool] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        self.modes.append(self.training)
        assert not torch.is_grad_enabled()
        return self.table[x[:, 0].long()]


def _lookup_setup() -> tuple[LookupModel, torch.Tensor, torch.Tensor, torch.Tensor]:
    preds = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
    y = torch.tensor([0, 1, 0, 0, 2, 2, 1, 1, 2, 1])
    # correct:        1  1  0  1  0  1  0  1  1  0  -> 6/10
    logits = torch.full((10, 3), -2.0)
    logits[torch.arange(10), preds] = 3.0
    x = torch.arange(10, dtype=torch.float32).unsqueeze(1)
    return LookupModel(logits), x, y, logits


def test_evaluate_exact_central_and_overlapping_clients() -> None:
    model, x, y, logits = _lookup_setup()
    model.train()
    clients = [
        torch.tensor([0, 1, 2, 3]),  # 3/4
        torch.tensor([2, 4, 6]),  # 0/3
        torch.tensor([0, 5, 8, 9, 1]),  # 4/5
        torch.tensor([2, 2, 3], dtype=torch.int32),  # 1/3 (duplicates count twice)
    ]
    out = evaluate(model, x, y, clients, batch_size=3)
    accs = np.array([3 / 4, 0 / 3, 4 / 5, 1 / 3])
    assert out["central_accuracy"] == pytest.approx(0.6, abs=1e-12)
    expected_loss = nn.functional.cross_entropy(logits, y).item()
    assert out["central_loss"] == pytest.approx(expected_loss, rel=1e-6)
    assert out["client_accuracy"] == pytest.approx(accs.mean(), abs=1e-12)
    assert out["client_accuracy_std"] == pytest.approx(accs.std(), abs=1e-12)
    assert out["client_accuracy_min"] == 0.0
    assert model.calls == 4  # ceil(10 / 3) batches: one pass, no per-client reruns
    assert model.modes == [False] * 4 and model.training  # eval during, mode restored


def test_evaluate_without_clients_keeps_eval_mode() -> None:
    model, x, y, _ = _lookup_setup()
    model.eval()
    out = evaluate(model, x, y, None)
    assert set(out) == {"central_accuracy", "central_loss"}
    assert out["central_accuracy"] == pytest.approx(0.6, abs=1e-12)
    assert model.calls == 1 and not model.training


def test_evaluate_skips_empty_clients_and_validates_indices() -> None:
    model, x, y, _ = _lookup_setup()
    clients = [torch.tensor([0, 1]), torch.tensor([], dtype=torch.long), torch.tensor([2])]
    out = evaluate(model, x, y, clients)
    assert out["client_accuracy"] == pytest.approx(0.5, abs=1e-12)  # (1 + 0) / 2
    assert out["client_accuracy_min"] == 0.0
    with pytest.raises(DataError, match=r"\[0, 10\)"):
        evaluate(model, x, y, [torch.tensor([0, 10])])
    with pytest.raises(DataError, match=r"\[0, 10\)"):
        evaluate(model, x, y, [torch.tensor([-1, 3])])
    with pytest.raises(DataError, match="empty"):
        evaluate(model, x, y, [torch.tensor([], dtype=torch.long)])
    with pytest.raises(DataError):
        evaluate(model, x[:0], y[:0], None)
    with pytest.raises(ConfigError):
        evaluate(model, x, y, None, batch_size=0)
    assert model.training  # restored after the failing calls too


def test_evaluate_restores_mode_on_model_error() -> None:
    class Broken(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            raise RuntimeError("boom")

    m = Broken().train()
    with pytest.raises(RuntimeError, match="boom"):
        evaluate(m, torch.zeros(2, 1), torch.zeros(2, dtype=torch.long), None)
    assert m.training


# ---- progress ----------------------------------------------------------------------------------


def test_progress_plain_lines(capsys) -> None:
    with RoundProgress(total_rounds=20, enabled=False) as p:
        p.update(1, {"round": 1, "cumulative_upload_bytes": 1_000_000, "round_time_s": 0.5})
        p.update(
            3,
            {
                "round": 3,
                "central_accuracy": 0.41234,
                "cumulative_upload_bytes": 12_340_000,
                "cumulative_download_bytes": 13_000_000,
                "round_time_s": 4.07,
            },
        )
        p.update(4, {"round": 4})  # no evaluation: the last accuracy carries over, with its round
        p.update(20, {"round": 20, "central_accuracy": 0.5})
    lines = capsys.readouterr().out.splitlines()
    left = r" left=\d+s"  # estimated from this process's own rounds
    patterns = [
        r"round 1/20 acc=- up=1\.0MB 0\.5s" + left,
        r"round 3/20 acc=0\.412@r3 up=12\.3MB down=13\.0MB 4\.1s" + left,
        r"round 4/20 acc=0\.412@r3" + left,
        r"round 20/20 acc=0\.500@r20",  # nothing left
    ]
    assert len(lines) == len(patterns)
    for line, pattern in zip(lines, patterns):
        assert re.fullmatch(pattern, line), line


def test_progress_enabled_but_not_a_terminal_prints_lines(capsys) -> None:
    with RoundProgress(total_rounds=2, enabled=True) as p:  # pytest's stdout is not a tty
        p.update(1, {"round": 1, "central_accuracy": 0.5})
    assert re.fullmatch(r"round 1/2 acc=0\.500@r1 left=\d+s\n", capsys.readouterr().out)


def test_progress_of_a_resumed_run_counts_only_its_own_rounds(capsys, monkeypatch) -> None:
    clock = iter([100.0, 100.0, 130.0])  # construction, start, after round 5 (30 s for 1 round)
    monkeypatch.setattr("fedsparse.metrics.progress.time", SimpleNamespace(perf_counter=lambda: next(clock)))
    with RoundProgress(total_rounds=10, enabled=False, done=4) as p:
        p.update(5, {"round": 5})
    assert capsys.readouterr().out == "round 5/10 acc=- left=2m30s\n"


def test_progress_estimate_leaves_out_the_first_round(capsys, monkeypatch) -> None:
    """The first round also sets the nodes up: once later rounds exist, they alone set the pace."""
    clock = iter([0.0, 0.0, 8.0, 10.0, 12.0])  # construction, start, rounds 1 (8 s), 2 and 3 (2 s each)
    monkeypatch.setattr("fedsparse.metrics.progress.time", SimpleNamespace(perf_counter=lambda: next(clock)))
    with RoundProgress(total_rounds=10, enabled=False) as p:
        for r in (1, 2, 3):
            p.update(r, {"round": r})
    assert capsys.readouterr().out.splitlines() == [
        "round 1/10 acc=- left=1m12s", "round 2/10 acc=- left=16s", "round 3/10 acc=- left=14s"]


def test_duration() -> None:
    assert [duration(s) for s in (0.4, 42, 185, 3720)] == ["0s", "42s", "3m05s", "1h02m"]


# ---- summary -----------------------------------------------------------------------------------


def test_summarize_synthetic_rows() -> None:
    rows = _synthetic_rows(6)
    rows[3]["central_accuracy"] = 0.9  # round 4 is the best central round
    rows[5]["density"] = 0.1
    s = summarize(rows)
    assert s == {
        "rounds": 6,
        "final_central_accuracy": pytest.approx(0.6),
        "final_central_accuracy_round": 6,
        "best_central_accuracy": 0.9,
        "best_central_accuracy_round": 4,
        "final_client_accuracy": pytest.approx(0.54),
        "final_client_accuracy_round": 6,
        "best_client_accuracy": pytest.approx(0.54),
        "best_client_accuracy_round": 6,
        "total_upload_bytes": 15_000_000,
        "total_download_bytes": 18_000_000,
        "wall_time_s": pytest.approx(9.0),
        "final_density": 0.1,
    }
    json.dumps(s)


def test_summarize_handles_missing_fields_and_empty() -> None:
    s = summarize([{"round": 1, "central_accuracy": None}, {"round": 2}])
    assert s["rounds"] == 2
    assert s["final_central_accuracy"] is None and s["best_client_accuracy_round"] is None
    assert s["total_upload_bytes"] is None and s["wall_time_s"] is None
    empty = summarize([])
    assert empty["rounds"] == 0 and all(v is None for k, v in empty.items() if k != "rounds")
    assert not any(isinstance(v, float) and math.isnan(v) for v in empty.values())


def test_summary_lines_report_accuracies_traffic_time_and_files(tmp_path: Path) -> None:
    rows = _synthetic_rows(6)
    rows[3]["central_accuracy"] = 0.9
    (tmp_path / "checkpoint").mkdir()
    for name in ("summary.json", "metrics.jsonl", ".summary.json.x.tmp"):
        (tmp_path / name).write_text("")
    lines = summary_lines(summarize(rows), tmp_path, wall_s=75.2)
    assert lines == [
        "done: 6 rounds; wall time 1m15s (the rounds themselves: 9s)",
        "central test accuracy: final 0.6000 (round 6), best 0.9000 (round 4)",
        "client test accuracy:  final 0.5400 (round 6), best 0.5400 (round 6)",
        "cumulative traffic: upload 0.015 GB, download 0.018 GB",
        f"run folder: {tmp_path}",
        "  checkpoint/ metrics.jsonl summary.json",  # temporary files left out
    ]
    bare = summary_lines(summarize([{"round": 1}]), tmp_path, wall_s=3)
    assert bare[:4] == ["done: 1 rounds; wall time 3s", "central test accuracy: not evaluated",
                        "client test accuracy:  not evaluated",
                        "cumulative traffic: upload - GB, download - GB"]


def test_evaluate_transforms_each_batch() -> None:
    """`transform` is applied batch by batch: same figures as evaluating pre-transformed inputs."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 4))
    raw = torch.randint(0, 256, (10, 3, 2, 2), dtype=torch.uint8)
    y = torch.randint(0, 4, (10,))
    clients = [torch.tensor([0, 1, 2]), torch.tensor([3, 4, 5, 6, 7, 8, 9])]

    def scale(xb: torch.Tensor) -> torch.Tensor:
        return xb.float() / 255 - 0.5

    direct = evaluate(model, scale(raw), y, clients, batch_size=3)
    batched = evaluate(model, raw, y, clients, batch_size=3, transform=scale)
    assert batched == direct


def test_client_test_sets_share_identical_sets() -> None:
    """Clients with the same index set share one segment; every client still counts once."""
    correct = torch.tensor([1, 1, 0, 1, 0, 0, 1, 0, 1, 1], dtype=torch.bool)
    clients = [torch.tensor([0, 1, 2]), torch.tensor([3, 4]), torch.tensor([0, 1, 2]),
               torch.tensor([], dtype=torch.long), torch.tensor([0, 1, 2], dtype=torch.int32),
               torch.tensor([2, 1, 0])]  # same elements, other order: a set of its own
    sets = ClientTestSets(clients, 10, torch.device("cpu"))
    assert sets.count == 4  # {0,1,2}, {3,4}, {}, (2,1,0)
    accs = np.array([2 / 3, 1 / 2, 2 / 3, 2 / 3, 2 / 3])  # the empty client is left out
    out = sets.stats(correct)
    assert out["client_accuracy"] == pytest.approx(accs.mean(), abs=1e-12)
    assert out["client_accuracy_std"] == pytest.approx(accs.std(), abs=1e-12)
    assert out["client_accuracy_min"] == pytest.approx(0.5, abs=1e-12)
