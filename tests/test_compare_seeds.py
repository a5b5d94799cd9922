"""Archived comparisons and the multi-seed tables: what is archived reads back identically, means
and ranges over seeds are those computed by hand, the reference-band check reads the right rounds."""

from __future__ import annotations

import json
from pathlib import Path

from fedsparse.compare.archive import archive_comparison, method_runs, read_rows
from fedsparse.compare.feddst_reference import band_means
from fedsparse.compare.seeds import load_seeds, seeds_report
from fedsparse.compare.seeds_cli import main
from fedsparse.metrics.run_folder import RunFolder

GB = 1e9


def _run(folder: Path, method: str, seed: int, acc: list[float], gb_per_round: float,
         density: float) -> Path:
    """A finished run folder as the runner writes it: config.yaml, metrics.jsonl, summary.json."""
    path = folder / f"{method}-20261201-000000-s{seed}"
    path.mkdir(parents=True)
    (path / "config.yaml").write_text(f"name: {method}\nseed: {seed}\n")
    rows = [{"round": r, "client_accuracy": a, "central_accuracy": a,
             "cumulative_upload_bytes": r * gb_per_round * GB, "density": density}
            for r, a in enumerate(acc)]
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (path / "summary.json").write_text(json.dumps({"rounds": len(acc) - 1}))
    return path


def _comparison(folder: Path, seed: int, shift: float) -> dict[str, Path]:
    folder.mkdir(parents=True)
    (folder / "comparison.md").write_text("# table\n")
    return {"feddst": _run(folder, "feddst", seed, [0.1] + [0.1 * r + shift for r in range(2, 7)], 0.1, 0.2),
            "fedavgm": _run(folder, "fedavgm", seed, [0.1, 0.15, 0.2, 0.25, 0.3, 0.35], 0.25, 1.0)}


def test_archive_reads_back_the_same_rows_with_stable_bytes(tmp_path: Path) -> None:
    runs = _comparison(tmp_path / "cmp", 0, 0.0)
    dest = tmp_path / "docs" / "cifar10-s0"
    written = archive_comparison(tmp_path / "cmp", runs, dest)
    assert dest / "comparison.md" in written and (dest / "feddst" / "metrics.jsonl.gz").is_file()
    found = method_runs(dest)
    assert set(found) == {"feddst", "fedavgm"}
    assert read_rows(found["feddst"]) == RunFolder(runs["feddst"]).read_metrics()
    first = (dest / "feddst" / "metrics.jsonl.gz").read_bytes()
    archive_comparison(tmp_path / "cmp", runs, dest)
    assert (dest / "feddst" / "metrics.jsonl.gz").read_bytes() == first  # nothing changes in git


def test_mean_and_range_over_seeds_and_per_seed_deltas(tmp_path: Path) -> None:
    _comparison(tmp_path / "s0", 0, 0.0)
    _comparison(tmp_path / "s1", 1, 0.1)
    runs = load_seeds([tmp_path / "s0", tmp_path / "s1"])
    assert sorted(runs["feddst"]) == [0, 1]
    text = seeds_report(runs, caps_gb=[0.35], reference="fedavgm")
    # feddst at 0.35 GB: mean of its last 3 evaluations (rounds 1-3); seed 0: 0.3, seed 1: 0.4
    # end of run: feddst's last 3 evaluations (rounds 3-5), seed 0: 0.5, seed 1: 0.6, at 0.5 GB
    assert "| feddst | 0, 1 | 35.0 (30.0-40.0, 2 seeds) | 55.0 (50.0-60.0, 2 seeds) at 0.50 GB |" in text
    # fedavgm within 0.35 GB: rounds 0-1 -> (0.1 + 0.15) / 2 = 12.5 in both seeds; its end: rounds
    # 3-5 -> 0.3 at 1.25 GB
    assert "| fedavgm | 0, 1 | 12.5 (12.5-12.5, 2 seeds) | 30.0 (30.0-30.0, 2 seeds) at 1.25 GB |" in text
    # deltas per seed: same cap 0.3 - 0.125 = +17.5, 0.4 - 0.125 = +27.5; at 0.7 GB fedavgm's last
    # three within 0.7 GB are rounds 0-2: (0.1 + 0.15 + 0.2) / 3 = 0.15 -> +15.0 and +25.0
    assert "| feddst | +22.5 (+17.5..+27.5) / +20.0 (+15.0..+25.0) |" in text


def test_reference_bands_average_the_evaluations_in_their_rounds() -> None:
    rows = [{"round": r, "client_accuracy": 0.001 * r if r % 10 == 0 else None} for r in range(401)]
    (b1, m1), (b2, m2), (b3, m3) = band_means(rows)
    assert (b1.first, b1.last) == (90, 110) and abs(m1 - 0.1) < 1e-9  # rounds 90, 100, 110
    assert abs(m2 - 0.2) < 1e-9 and abs(m3 - 0.325) < 1e-9  # rounds 250..400 step 10
    assert band_means([{"round": 5, "client_accuracy": 0.5}])[0][1] is None


def test_cli_writes_tables_and_figures_or_one_error_line(tmp_path: Path, capsys) -> None:
    _comparison(tmp_path / "s0", 0, 0.0)
    _comparison(tmp_path / "s1", 1, 0.1)
    out = tmp_path / "out" / "seeds.md"
    assert main([f"folders=[{tmp_path / 's0'},{tmp_path / 's1'}]", f"out={out}", "caps_gb=[0.3]"]) == 0
    assert "feddst" in out.read_text()
    assert (out.parent / "seeds_client_accuracy_vs_upload.png").stat().st_size > 1000
    assert main([f"folders=[{tmp_path / 'missing'}]", f"out={out}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "folders" in err[0]
