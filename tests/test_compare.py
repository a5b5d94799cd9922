"""`simulations.compare`: method configs, caps, the report, the upload stop and resuming a killed
comparison through real runs (MNIST, Flower + Ray)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fedsparse.compare.config import load_comparison
from fedsparse.compare.methods import as_args, is_sparse, load_methods
from fedsparse.compare.report import accuracy_at, auto_caps, write_report
from fedsparse.compare.runs import dense_args, order
from fedsparse.config import load_config
from fedsparse.errors import ConfigError
from fedsparse.metrics.run_folder import RunFolder

ROOT = Path(__file__).resolve().parent.parent


def _rows(accs: list[float | None], up_per_round: float) -> list[dict]:
    return [{"round": r, "cumulative_upload_bytes": r * up_per_round, "cumulative_download_bytes":
             r * up_per_round, "client_accuracy": a, "central_accuracy": a}
            for r, a in enumerate(accs)]


def test_accuracy_at_takes_the_last_evaluation_within_the_cap() -> None:
    rows = _rows([0.1, None, 0.3, None, 0.5], up_per_round=1e9)  # 1 GB per round
    assert accuracy_at(rows, 3.5, "client") == (0.3, 2, False)
    assert accuracy_at(rows, 4.0, "client") == (0.5, 4, False)
    assert accuracy_at(rows, 10.0, "central") == (0.5, 4, True)  # run ended at 4 GB
    assert accuracy_at(_rows([None, 0.2], 1e9), 0.5, "client") is None
    assert accuracy_at(rows, 4.0, "client", last=2) == (0.4, 4, False)  # mean of rounds 2 and 4
    assert accuracy_at(rows, 1.0, "client", last=3) == (0.1, 0, False)  # fewer than 3 there


def test_auto_caps_come_from_the_smallest_sparse_total() -> None:
    assert auto_caps({"feddst": 1.234, "plus": 2.0, "fedavgm": 9.0}, ["feddst", "plus"]) == \
        [0.31, 0.62, 1.2, 2.5]
    assert auto_caps({"fedavg": 0.04}, []) == [0.01, 0.02, 0.04, 0.08]


def test_as_args_round_trip_through_load_config() -> None:
    args = as_args({"strategy": "fixed_mask", "faithful": True, "proximal_mu": None, "alpha": 0.02})
    assert args == ["strategy=fixed_mask", "faithful=true", "proximal_mu=null", "alpha=0.02"]
    cfg = load_config("feddst_mnist", args)
    assert (cfg.train.strategy, cfg.faithful, cfg.train.fedprox.proximal_mu, cfg.readjust.alpha) == ("fixed_mask", True, None, 0.02)


def test_shipped_methods_and_paper_configs() -> None:
    methods = load_methods()
    assert {"fedavg", "fedavgm", "fedprox", "feddst", "feddst_faithful", "feddst_plus",
            "fixed_random", "fixed_snip"} <= set(methods)
    comp = load_comparison(["config=feddst_mnist"])
    faithful, paper, plus = (comp.configs[m] for m in ("feddst_faithful", "feddst", "feddst_plus"))
    assert faithful.mask.budget == "feddst_erk" and faithful.readjust.alpha_schedule == "constant"
    assert faithful.mask.criterion == "magnitude" and faithful.train.double_softmax
    assert paper.readjust.regrow_train_epochs == 0 and paper.mask.budget == "feddst_erk"  # the paper's code's "ERK"
    assert plus.readjust.regrow_train_epochs == 1 and plus.mask.budget == "erk"
    assert [is_sparse(comp.configs[m]) for m in ("fedavgm", "feddst", "fixed_snip")] == \
        [False, True, True]
    assert order(comp)[:5] == ["feddst", "feddst_faithful", "feddst_plus", "fixed_random", "fixed_snip"]
    for name, dataset, model, sparsity, every in (("feddst_cifar10", "cifar10", "cifar10_net", 0.8, 15),
                                                  ("feddst_mnist", "mnist", "mnist_net", 0.8, 15),
                                                  ("feddst_cifar100", "cifar100", "cifar10_net", 0.5, 10)):
        cfg = load_config(name)
        assert (cfg.data.dataset, cfg.model.model, cfg.mask.sparsity, cfg.readjust.readjust_every) == (dataset, model, sparsity, every)
        assert (cfg.data.num_clients, cfg.train.clients_per_round, cfg.train.rounds, cfg.train.local_epochs) == (400, 20, 400, 10)
        assert cfg.readjust.readjust_until == 200 and cfg.readjust.alpha == 0.01
        assert (cfg.mask.budget, cfg.readjust.regrow_train_epochs, cfg.faithful) == ("feddst_erk", 0, False)


def test_dense_methods_evaluate_at_the_sparse_upload_spacing(tmp_path: Path) -> None:
    comp = load_comparison(["config=feddst_mnist", "methods=[fedavgm,feddst]", f"out={tmp_path}"])
    assert dense_args(comp, "feddst") == []
    assert dense_args(comp, "fedavgm") == ["eval_every=2"]  # 10 rounds x density 0.2


def test_a_dense_method_alone_is_capped_by_the_sparse_runs_in_the_folder(tmp_path: Path) -> None:
    """fedavgm added to a comparison whose sparse runs finished earlier: the same cap and eval
    spacing as when the sparse methods are listed with it."""
    run = tmp_path / "feddst-20260101-000000-s0"
    run.mkdir()
    (run / "config.yaml").write_text(load_config("feddst_mnist", ["strategy=feddst", "name=feddst"]).to_yaml())
    (run / "summary.json").write_text(json.dumps({"total_upload_bytes": 1.5e9}))
    other_seed = tmp_path / "feddst-20260101-000000-s1"
    other_seed.mkdir()
    (other_seed / "config.yaml").write_text(load_config("feddst_mnist", ["seed=1"]).to_yaml())
    (other_seed / "summary.json").write_text(json.dumps({"total_upload_bytes": 9e9}))
    comp = load_comparison(["config=feddst_mnist", "methods=[fedavgm]", f"out={tmp_path}"])
    assert dense_args(comp, "fedavgm") == ["eval_every=2", "max_upload_gb=3"]


@pytest.mark.parametrize("argv, match", [
    (["methods=[feddst,nope]"], "unknown method 'nope'"),
    (["methods=[]"], "methods"),
    (["caps_gb=[0]"], "caps_gb"),
    (["dense_budget=-1"], "dense_budget"),
    (["rounds=0"], "rounds"),
    (["output_dir=x"], "output_dir cannot be set"),
    (["methods_file=/nonexistent.yaml"], "methods_file"),
])
def test_bad_comparison_input(argv: list[str], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        load_comparison(argv)


def test_report_tables_and_headline(tmp_path: Path) -> None:
    runs = {}
    for name, accs, up in (("feddst", [0.1, 0.3, 0.5, 0.6], 1e9), ("fedavgm", [0.1, 0.2, 0.4, 0.45], 4e9)):
        run = RunFolder.create(str(tmp_path), name, 0)
        for row in _rows(accs, up):
            run.append_metrics(row)
        run.write_summary({"rounds": 3, "final_client_accuracy": accs[-1],
                           "final_central_accuracy": accs[-1], "total_upload_bytes": 3 * up,
                           "total_download_bytes": 3 * up, "final_density": 1.0, "wall_time_s": 1.0})
        runs[name] = run.path
    report = write_report(tmp_path, runs, ["feddst"], None).read_text()
    # caps from feddst's 3 GB: 0.75, 1.5, 3, 6; fedavgm at 3 GB: round 0 (10%), at 6 GB: 20%
    # means of the last 3 evaluations within the cap: feddst at 3 GB (0.3 + 0.5 + 0.6) / 3;
    # fedavgm (4 GB a round) at 3 GB: round 0 only, at 6 GB: (0.1 + 0.2) / 2, at 12 GB: rounds 1-3
    assert "| feddst | 3 | +36.7 | +31.7 |" in report
    assert "| feddst | 6 | +31.7 | +11.7 |" in report  # fedavgm reached 12 GB = 2 x 6 GB
    assert "| feddst | 0.75 | +0.0 | +0.0 |" in report
    assert "| feddst | 10.0 (r0) | 30.0 (r1) | 60.0 (r3) | 60.0* (r3) |" in report  # last evaluation
    for png in ("client_accuracy_vs_upload.png", "central_accuracy_vs_download.png"):
        assert (tmp_path / png).stat().st_size > 1000
    assert len((tmp_path / "caps.csv").read_text().splitlines()) == 1 + 2 * 4 * 2


pytestmark_e2e = pytest.mark.skipif(not os.environ.get("FEDSPARSE_DATA"),
                                    reason="needs FEDSPARSE_DATA (real MNIST)")

TINY = ["config=feddst_mnist", "model=mlp", "num_clients=10", "clients_per_round=3", "rounds=4", "local_epochs=1",
        "batch_size=16", "eval_every=2", "readjust_every=1", "checkpoint_every=10", "num_actors=1"]
"""checkpoint_every=10: a run killed mid-way resumes from its round-0 checkpoint, whose row is kept."""


def _compare(out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "simulations.compare", *TINY, f"out={out}",
            "methods=[fedavgm,feddst]", *extra]


@pytest.mark.e2e
@pytestmark_e2e
def test_killed_comparison_resumes_and_reports(tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    proc = subprocess.Popen(_compare(out), cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 300
    metrics = None
    while time.monotonic() < deadline and proc.poll() is None:
        found = list(out.glob("feddst-*/metrics.jsonl"))
        if found and len(found[0].read_text().splitlines()) >= 2:  # rounds 0 and 1 written
            metrics = found[0]
            break
        time.sleep(0.05)  # an MLP round takes well under a second
    assert metrics is not None, "the comparison never reached round 1 of its first method"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (metrics.parent / "summary.json").exists()

    # resumed from another folder, with paths relative to it (the method runs in that folder too)
    kept = tmp_path / "docs"
    env = {**os.environ, "FEDSPARSE_DATA": os.path.abspath(os.environ["FEDSPARSE_DATA"])}
    done = subprocess.run(_compare(Path("cmp"), "archive=docs"), cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "feddst: resuming" in done.stdout and "fedavgm: starting" in done.stdout
    rows = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert [r["round"] for r in rows] == [0, 1, 2, 3, 4]
    assert json.loads((metrics.parent / "summary.json").read_text())["restarts"][0]["from_round"] == 0
    feddst_up = rows[-1]["cumulative_upload_bytes"]
    dense = [json.loads(line) for line in next(out.glob("fedavgm-*/metrics.jsonl")).read_text().splitlines()]
    # fedavgm stops in the round its upload reaches 2 x feddst's, and is evaluated there
    assert dense[-1]["cumulative_upload_bytes"] >= 2 * feddst_up > dense[-2]["cumulative_upload_bytes"]
    assert dense[-1].get("client_accuracy") is not None
    report = (out / "comparison.md").read_text()
    assert "| feddst | 4 |" in report and "| fedavgm |" in report
    assert (out / "client_accuracy_vs_upload.png").stat().st_size > 1000

    assert {p.name for p in kept.iterdir()} >= {"feddst", "fedavgm", "comparison.md"}

    # on a fresh machine (a new comparison folder), the archive alone: nothing runs again
    again = subprocess.run(_compare(tmp_path / "fresh", f"archive={kept}"), cwd=ROOT,
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert again.stdout.count("skipped") == 2 and "starting" not in again.stdout
    assert "| feddst | 4 |" in (tmp_path / "fresh" / "comparison.md").read_text()


@pytest.mark.e2e
@pytestmark_e2e
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_to_the_comparison_stops_its_run_resumably_with_one_line(tmp_path: Path, sig: int) -> None:
    """Signalled alone (`kill`, not the terminal's group), the comparison passes the signal on to
    the running method, waits for it to stop and names the command that goes on."""
    out = tmp_path / "cmp"
    proc = subprocess.Popen(_compare(out, "rounds=40"), cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        found = list(out.glob("feddst-*/metrics.jsonl"))
        if found and len(found[0].read_text().splitlines()) >= 2:
            break
        time.sleep(0.05)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 128 + sig, stderr[-2000:]
    line = stderr.strip().splitlines()[-1]
    assert line.startswith("interrupted while feddst ran") and "Go on with: python -m simulations.compare" in line
    assert f"out={out}" in line and "'methods=[fedavgm,feddst]'" in line
    assert "Traceback" not in stderr
    run = next(out.glob("feddst-*"))
    assert not (run / "summary.json").exists() and (run / "checkpoint").is_dir()
    assert "Resume with: python -m simulations.cifar_noniid" in (out / "feddst.log").read_text().splitlines()[-1]
