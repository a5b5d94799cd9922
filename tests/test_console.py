"""What `python -m simulations.cifar_noniid` shows and how it stops, on real runs (Flower + Ray,
real MNIST): a quiet stderr, one line per round, the end-of-run report, and Ctrl-C / SIGTERM
ending the run within seconds with the command that resumes it."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import ray

from fedsparse import interrupt, runner
from fedsparse.config import checkpoint_round, load_config
from tests.processes import session_alive

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not os.environ.get("FEDSPARSE_DATA"), reason="needs FEDSPARSE_DATA (real MNIST)"),
]

ROOT = Path(__file__).resolve().parent.parent
RUN = ["dataset=mnist", "model=mlp", "num_clients=4", "clients_per_round=2", "local_epochs=1",
       "batch_size=16", "num_actors=1", "name=console"]
EXIT_S = 10  # a signalled run must be gone within this many seconds (1.5-2 s measured)


def _cli(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "simulations.cifar_noniid", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, **kwargs)


def _assert_quiet(stderr: str) -> None:
    """No DEBUG record and no line printed twice (Flower's handler plus the root one did that)."""
    assert "DEBUG" not in stderr, stderr
    repeated = [line for line, n in Counter(stderr.splitlines()).items() if n > 1 and line.strip()]
    assert not repeated, stderr
    assert "Traceback" not in stderr and "deprecated" not in stderr, stderr


def _assert_report(stdout: str, run: Path) -> None:
    """The end-of-run report agrees with summary.json and lists the run folder's files."""
    s = json.loads((run / "summary.json").read_text())
    report = stdout[stdout.index("done: "):].splitlines()
    assert re.fullmatch(rf"done: {s['rounds']} rounds; wall time \S+ \(the rounds themselves: \S+\)",
                        report[0])
    for line, kind in zip(report[1:3], ("central", "client")):
        key = f"{kind}_accuracy"
        assert line.split(": ", 1)[1].strip() == (
            f"final {s[f'final_{key}']:.4f} (round {s[f'final_{key}_round']}), "
            f"best {s[f'best_{key}']:.4f} (round {s[f'best_{key}_round']})")
    assert report[3] == (f"cumulative traffic: upload {s['total_upload_bytes'] / 1e9:.4g} GB, "
                         f"download {s['total_download_bytes'] / 1e9:.4g} GB")
    assert report[4] == f"run folder: {run}"
    assert {"config.yaml", "metrics.jsonl", "summary.json", "checkpoint/"} <= set(report[5].split())


def test_plain_run_is_quiet_and_ends_with_a_report(tmp_path: Path) -> None:
    proc = _cli(*RUN, "rounds=2", f"output_dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr
    _assert_quiet(proc.stderr)
    assert proc.stderr == ""  # nothing went wrong, so nothing to say there
    run = next(tmp_path.glob("console-*"))
    lines = proc.stdout.splitlines()
    assert lines[0] == f"run folder: {run}"
    # stdout is a pipe: one plain line per round, the accuracy marked with its round
    assert re.fullmatch(r"round 1/2 acc=- up=\S+MB down=\S+MB \S+s left=\S+", lines[1])
    assert re.fullmatch(r"round 2/2 acc=0\.\d{3}@r2 up=\S+MB down=\S+MB \S+s", lines[2])
    _assert_report(proc.stdout, run)


def test_ctrl_c_stops_the_run_and_prints_the_resume_command(tmp_path: Path) -> None:
    rounds = 8
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    with open(out, "w") as stdout, open(err, "w") as stderr:
        # its own session, as a terminal's foreground job: Ctrl-C signals the whole group
        proc = subprocess.Popen([sys.executable, "-m", "simulations.cifar_noniid", *RUN,
                                 f"rounds={rounds}", "checkpoint_every=1", f"output_dir={tmp_path}"],
                                cwd=ROOT, stdout=stdout, stderr=stderr, start_new_session=True)
        try:
            deadline = time.monotonic() + 240
            while proc.poll() is None and time.monotonic() < deadline:
                runs = list(tmp_path.glob("console-*"))
                if runs and (checkpoint_round(runs[0]) or 0) >= 1:
                    break
                time.sleep(0.05)
            assert proc.poll() is None, err.read_text()
            t_signal = time.monotonic()
            os.killpg(proc.pid, signal.SIGINT)
            proc.wait(timeout=60)
            exit_s = time.monotonic() - t_signal
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    assert proc.returncode == 130 and exit_s < EXIT_S, (proc.returncode, exit_s, err.read_text())
    deadline = time.monotonic() + EXIT_S
    while session_alive(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not session_alive(proc.pid)  # Ray and its actors went down with the run
    run = next(tmp_path.glob("console-*"))
    done = checkpoint_round(run)
    assert done is not None and 1 <= done < rounds
    # one line on stderr, no traceback: the last checkpointed round and the command to resume
    hint = err.read_text()
    match = re.fullmatch(rf"interrupted; last checkpoint: round {done}\. Resume with: (.+)\n", hint)
    assert match, hint
    command = shlex.split(match.group(1))
    assert command[:3] == ["python", "-m", "simulations.cifar_noniid"]

    # the printed command continues the run to its end
    resumed = subprocess.run([sys.executable, *command[1:]], cwd=ROOT, capture_output=True,
                             text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    _assert_quiet(resumed.stderr)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["round"] for r in rows] == list(range(rounds + 1))
    assert json.loads((run / "summary.json").read_text())["restarts"][0]["from_round"] == done
    _assert_report(resumed.stdout, run)


def test_sigterm_raises_interrupted_even_after_ray_took_the_handler() -> None:
    """`ray.init` installs its own SIGTERM handler in the process that starts Ray (it would kill
    Ray and raise SystemExit, leaving Flower's threads to hang); `runner.start_ray` takes it back."""
    previous = signal.getsignal(signal.SIGTERM)
    with pytest.raises(interrupt.Interrupted) as caught, interrupt.raise_on_signals(runner.CLI):
        try:
            runner.start_ray(load_config("cifar_noniid", ["num_actors=1", "log_level=error"]))
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler raises before this ends
        finally:
            ray.shutdown()
    assert caught.value.signum == signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) is previous  # restored on leaving
