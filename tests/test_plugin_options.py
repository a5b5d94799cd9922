"""Typed plugin options (fedsparse/plugin_options.py) and the config key `criterion_options`:
options built from a dict, one-line errors for an unknown option, a wrong type, a value out of
range, and an option of another criterion, on the command line before any work."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from fedsparse.config import load_config
from fedsparse.errors import ConfigError
from fedsparse.plugin_options import NoOptions, build_options, describe_options, option
from fedsparse.sparse.criteria import CRITERIA
from fedsparse.sparse.criteria.grasp import GraspOptions
from fedsparse.sparse.criteria.learned import LearnedOptions
from fedsparse.sparse.criteria.lottery_ticket import LotteryOptions
from fedsparse.sparse.criteria.synflow import SynflowOptions

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class _Opts:
    rate: float = option(0.5, "a rate", lo=0, hi=1, hi_open=True)
    steps: int = option(3, "steps", lo=1)
    mode: str = option("a", "a mode", choices=("a", "b"))
    path: str | None = option(None, "a file")
    legacy: str | None = option(None, "read from the config", config_key="old_key")

    def check(self) -> str | None:
        return "mode b needs steps >= 2" if self.mode == "b" and self.steps < 2 else None


@dataclass
class _Config:
    old_key: str = "from-config"


def _build(values: dict, config: object = None) -> _Opts:
    return build_options(_Opts, values, "plugin_options", "plugin 'x'", config)


def test_build_options_converts_and_defaults() -> None:
    opts = _build({"rate": 0, "steps": 7, "path": "f.npz"}, _Config())
    assert opts == _Opts(rate=0.0, steps=7, path="f.npz", legacy="from-config")
    assert isinstance(opts.rate, float) and hash(opts) == hash(_Opts(0.0, 7, "a", "f.npz", "from-config"))
    assert _build({}) == _Opts()
    assert build_options(NoOptions, {}, "k", "plugin 'y'") == NoOptions()


@pytest.mark.parametrize("values,needle", [
    ({"speed": 1}, "plugin_options.speed is invalid: plugin 'x' has no option 'speed'; its options: "
                   "rate, steps, mode, path"),
    ({"rate": 1.0}, "plugin_options.rate=1.0 is invalid: must be a float in [0, 1)"),
    ({"rate": "fast"}, "plugin_options.rate='fast' is invalid: must be a float in [0, 1)"),
    ({"steps": 2.5}, "plugin_options.steps=2.5 is invalid: must be an int in [1, inf)"),
    ({"steps": True}, "plugin_options.steps=True is invalid"),
    ({"mode": "c"}, "plugin_options.mode='c' is invalid: must be one of: a, b"),
    ({"path": 3}, "plugin_options.path=3 is invalid: must be a str or null"),
    ({"legacy": "x"}, "plugin 'x' reads legacy from the key old_key"),
    ({"mode": "b", "steps": 1}, "mode b needs steps >= 2"),
])
def test_build_options_one_line_errors(values: dict, needle: str) -> None:
    with pytest.raises(ConfigError) as e:
        _build(values)
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_every_criterion_declares_its_options() -> None:
    declared = {n: CRITERIA.options_class(n) for n in CRITERIA.names()}
    assert declared["grasp"] is GraspOptions and declared["synflow"] is SynflowOptions
    assert declared["lottery"] is LotteryOptions and declared["learned"] is LearnedOptions
    assert all(declared[n] is NoOptions for n in ("random", "magnitude", "gradient", "snip", "movement"))
    assert GraspOptions().temperature == 200.0  # the GraSP and Synaptic-Flow reference value
    assert "temperature=200.0 (a float in (0, inf))" in describe_options(GraspOptions)
    with pytest.raises(ConfigError, match="unknown criterion"):
        CRITERIA.options("obd", {}, "criterion_options")


@pytest.mark.parametrize("argv,needle", [
    (["criterion=grasp", "criterion_options.iterations=3"], "criterion_options.iterations"),
    (["criterion=grasp", "criterion_options.temperature=0"], "criterion_options.temperature"),
    (["criterion=snip", "criterion_options.temperature=200"], "criterion_options.temperature"),
    (["criterion=lottery", "criterion_options.budget=foo"], "criterion_options.budget"),
    (["criterion=synflow", "criterion_options.iterations=0"], "criterion_options.iterations"),
    (["granularity=rows"], "granularity"),
    (["granularity=channel", "input_keep=0.5"], "granularity"),
    (["granularity=channel", "mask_ablation=shuffle"], "granularity"),
    (["scope=net"], "scope"),
])
def test_config_rejects_bad_mask_settings(argv: list[str], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        load_config("cifar_noniid", argv)


def test_config_accepts_criterion_options() -> None:
    cfg = load_config("cifar_noniid", ["criterion=lottery", "criterion_options.iterations=2",
                                       "criterion_options.lr=1"])
    assert cfg.mask.criterion_options == {"iterations": 2, "lr": 1}


def test_cli_other_criterions_option_exits_2_with_one_line() -> None:
    proc = subprocess.run([sys.executable, "-m", "simulations.cifar_noniid", "criterion=grasp",
                           "criterion_options.iterations=3"], cwd=ROOT, capture_output=True,
                          text=True, timeout=180)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and "criterion_options.iterations" in proc.stderr
    assert "temperature" in proc.stderr and "Traceback" not in proc.stderr and proc.stdout == ""
