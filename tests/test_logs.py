"""Console logging: one handler, the chosen level, Flower's routine records demoted; the resume hint
of an interrupted run, and how repeated signals are told apart."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from flwr.common.logger import console_handler, warn_deprecated_feature

from fedsparse.config import load_config
from fedsparse.interrupt import resume_hint
from fedsparse.logs import setup_logging
from fedsparse.metrics.run_folder import CHECKPOINT_DIR, CHECKPOINT_FILE


def test_one_line_per_record_at_the_chosen_level(capsys) -> None:
    try:
        setup_logging("warning")
        flwr = logging.getLogger("flwr")
        assert console_handler not in flwr.handlers  # else every Flower record shows twice
        flwr.warning("the pool is empty")
        flwr.debug("backend_config: ...")
        logging.getLogger("fedsparse").info("server on cpu")
        warn_deprecated_feature("The `run_simulation` function is deprecated and will be removed")
        flwr.error("An exception was raised when processing a message by RayBackend")
        assert capsys.readouterr().err == "WARNING flwr: the pool is empty\n"

        setup_logging("debug")  # = -v: the rest, each record still once
        logging.getLogger("fedsparse").debug("detail")
        warn_deprecated_feature("The `run_simulation` function is deprecated and will be removed")
        err = capsys.readouterr().err.splitlines()
        assert err[0] == "DEBUG fedsparse: detail"
        assert err[1].startswith("DEBUG flwr: DEPRECATED FEATURE: The `run_simulation` function")
        assert "DEPRECATED" not in "".join(err[2:])
    finally:
        setup_logging("warning")


def test_resume_hint_names_the_checkpoint_and_the_command(tmp_path: Path) -> None:
    run = tmp_path / "my run"
    (run / CHECKPOINT_DIR).mkdir(parents=True)
    (run / "config.yaml").write_text(load_config("cifar_noniid", ["rounds=8"]).to_yaml())
    assert resume_hint(None, "simulations.cifar_noniid") == (
        "interrupted before the run started; nothing to resume")
    assert "no checkpoint" in resume_hint(run, "simulations.cifar_noniid")
    (run / CHECKPOINT_DIR / CHECKPOINT_FILE).write_text('{"round": 3}')
    assert resume_hint(run, "simulations.cifar_noniid") == (
        f"interrupted; last checkpoint: round 3. Resume with: "
        f"python -m simulations.cifar_noniid resume='{run}'")  # quoted: the path has a space
    (run / CHECKPOINT_DIR / CHECKPOINT_FILE).write_text('{"round": 8}')
    assert resume_hint(run, "simulations.cifar_noniid").startswith(
        "interrupted after the last round (8) while writing the summary and plots")


# A process that takes a signal, leaves its `Interrupted` unfinished (a slow shutdown) and takes a
# second one `gap` seconds later: kill(2) is delivered before it returns, so the order is fixed.
_TWO_SIGNALS = textwrap.dedent("""
    import os, signal, sys, time
    from pathlib import Path
    from fedsparse import interrupt
    gap = float(sys.argv[1])
    with interrupt.raise_on_signals("simulations.cifar_noniid"):
        interrupt.run_started(Path(sys.argv[2]))
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
        except interrupt.Interrupted:
            pass
        time.sleep(gap)
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.5)
    print("lived on")
""")


@pytest.mark.parametrize("gap, code, err", [
    (0.0, 0, ""),  # `timeout -s INT` signals the process, then its group: one stop
    (1.5, 130, "signalled again: ended without waiting for the shutdown\n"
               "interrupted; {run} has no checkpoint to resume from (checkpoint_every=0, or "
               "stopped before round 0 ended): start the run again\n"),
])
def test_a_repeat_within_repeat_s_is_the_same_stop_and_a_later_one_ends_at_once(
        gap: float, code: int, err: str, tmp_path: Path) -> None:
    run = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-c", _TWO_SIGNALS, str(gap), str(run)],
                          capture_output=True, text=True, timeout=60)
    assert (proc.returncode, proc.stderr) == (code, err.format(run=run))
    assert proc.stdout == ("lived on\n" if code == 0 else "")
