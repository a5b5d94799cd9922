"""`--help` / `-h` on every entry: exit 0, and every setting listed with its type, default and what
is allowed, generated from the settings dataclasses and their checks (fedsparse/usage.py)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from fedsparse.config import CHECKS, FLAT, Config, _range, allows, describe
from fedsparse.usage import Section, section_text

ROOT = Path(__file__).resolve().parent.parent
ENTRIES = sorted(f"{p.parent.name}.{p.stem}" for folder in ("simulations", "benchmarks")
                 for p in (ROOT / folder).glob("*.py") if 'if __name__ == "__main__"' in p.read_text())
RUN_SETTINGS = {"simulations.cifar_noniid", "simulations.compare", "benchmarks.full_run",
                "benchmarks.overhead", "benchmarks.memory_floor", "benchmarks.scale", "benchmarks.vs_flower"}


def _row(text: str, key: str) -> str:
    rows = [line for line in text.splitlines() if re.match(rf" {{1,4}}{re.escape(key)}\s", line)]
    assert len(rows) == 1, (key, text[-2000:])
    return rows[0]


# Runs each entry as `python -m` does (runpy, as __main__, with argv [path, "--help"]) in ONE
# subprocess, so that the import time (torch, Flower) is paid once, not once per entry.
DRIVER = """
import contextlib, io, json, runpy, sys
modules, results = sys.argv[1:], {}
for module in modules:
    sys.argv = [module, "--help"]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            runpy.run_module(module, run_name="__main__", alter_sys=True)
            code = "returned without exiting"
        except SystemExit as e:
            code = e.code
    results[module] = [code, out.getvalue()]
print(json.dumps(results))
"""


def _run(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _finish(proc: subprocess.Popen) -> tuple[str, str]:
    try:
        return proc.communicate(timeout=300)
    finally:
        proc.kill()


def test_every_entry_prints_its_settings_and_exits_0() -> None:
    assert len(ENTRIES) >= 11 and "simulations.cifar_noniid" in ENTRIES and "benchmarks.codec" in ENTRIES
    driver = _run(["-c", DRIVER, *ENTRIES])
    short = _run(["-m", "simulations.cifar_noniid", "-h"])  # and one real `python -m X -h`
    stdout, stderr = _finish(driver)
    assert driver.returncode == 0 and "Traceback" not in stderr, stderr[-3000:]
    results = json.loads(stdout)
    out = {}
    for module in ENTRIES:
        code, text = results[module]
        assert code == 0, (module, code, text[-1000:])
        assert text.startswith(f"usage: python -m {module}"), (module, text[:300])
        out[module] = text
    stdout, stderr = _finish(short)
    assert short.returncode == 0 and stderr == "", stderr[-2000:]
    assert stdout == out["simulations.cifar_noniid"]
    for module in RUN_SETTINGS:  # e.g. "  sparsity  float  0.8  [0, 1), and at most ..."
        text = out[module]
        assert re.match(r"\s+sparsity\s+float\s+0\.8\s+\[0, 1\), and at most", _row(text, "sparsity"))
        assert re.match(r"\s+strategy\s+str\s+feddst\s+one of: .*fedavg", _row(text, "strategy"))
        assert re.match(r"\s+clients_per_round\s+int\s+20\s+\[1, num_clients\]", _row(text, "clients_per_round"))
        assert re.match(r"\s+data_dir\s+str \| None\s+null\s+null ", _row(text, "data_dir"))
        for name in FLAT:  # settings added to Config's sections are listed without more work
            _row(text, name)
    central = out["simulations.centralized_sparse"]
    assert re.match(r"\s+sparsity\s+float\s+0\.9\s+\[0, 1\)", _row(central, "sparsity"))
    assert re.match(r"\s+method\s+str\s+rigl\s+one of: dense, ", _row(central, "method"))
    bench = out["simulations.pruning_bench"]
    assert re.match(r"\s+pretrain\.epochs\s+int\s+2\s+\[1, 10000\]", _row(bench, "pretrain.epochs"))
    assert re.match(r"\s+sparsities\s+list\[float\]\s+\[0\.5, .*each \[0, 1\)", _row(bench, "sparsities"))
    compare = out["simulations.compare"]
    assert re.match(r"\s+dense_budget\s+float\s+2\.0\s+a number >= 0", _row(compare, "dense_budget"))
    assert "It takes no settings." in out["benchmarks.codec"]


@dataclass
class _Settings:
    """A settings class as another module would write one."""

    # group one
    alpha: float = 0.5
    """fraction kept"""
    beta: int = field(default=3, metadata={"help": "how many"})
    # group two
    gamma: str | None = None  # where it goes
    delta: list[int] = field(default_factory=lambda: [1, 2])


def test_section_takes_types_defaults_checks_and_meanings_from_the_code() -> None:
    checks = {"alpha": _range(0, 1, hi_open=True), "beta": allows("a small count")(lambda v, _: None)}
    text = section_text(Section("Demo", _Settings(), checks))
    assert re.search(r"\n  # group one\n  alpha\s+float\s+0\.5\s+\[0, 1\)\n\s+fraction kept\n", text)
    assert re.search(r"\n  beta\s+int\s+3\s+a small count\n\s+how many\n", text)
    assert re.search(r"\n  # group two\n  gamma\s+str \| None\s+null\s+null or any str\n\s+where it goes\n", text)
    assert re.search(r"\n  delta\s+list\[int\]\s+\[1, 2\]\s+any list\[int\]$", text)


def test_every_run_setting_check_describes_what_it_allows() -> None:
    for name, check in CHECKS.items():
        assert describe(check).strip(), name
    assert describe(CHECKS["momentum"]) == "[0, 1)"
    assert describe(CHECKS["proximal_mu"]) == "null or [0, inf]"
    assert CHECKS["momentum"](1.5, Config()) == "in [0, 1)"  # the error text is unchanged


def test_help_into_a_closed_pipe_exits_0_without_a_traceback() -> None:
    """`--help | head -1`: a reader that has stopped reading is no error of the entry's."""
    proc = subprocess.Popen([sys.executable, "-m", "simulations.centralized_sparse", "--help"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    proc.stdout.close()  # before the entry has written anything: its every write meets a closed pipe
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0 and b"Traceback" not in err, err.decode()[-2000:]
