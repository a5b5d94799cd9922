"""The settings of a `flwr run .`: Flower's run config as `fedsparse.config.load_config` arguments.

pyproject.toml's `[tool.flwr.app.config]` declares `config` (the YAML file), `overrides`
(`key=value` settings, space-separated) and the main `Config` keys with their defaults ("" = null),
since Flower accepts in `flwr run --run-config` only keys declared there. A declared key overrides
the `config` file when it was given with `--run-config` (Flower's `Run.override_config`) or its
value was changed in pyproject.toml (differs from `Config`'s default); otherwise the file holds, so
`--run-config 'config="feddst_mnist"'` runs that file's setting.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from typing import Any

from fedsparse.config import Config
from fedsparse.errors import ConfigError, DataError

DEFAULT_CONFIG = "cifar_noniid"
OWN_KEYS = ("config", "overrides")


def load_args(run_config: Mapping[str, Any], given: Mapping[str, Any]) -> tuple[str, list[str]]:
    """(config file, `key=value` arguments) of a run: the `overrides`, then every other key of
    `run_config` that is in `given` (the keys passed with --run-config) or differs from the
    dataclass default. Unknown keys are passed on, for `load_config` to name."""
    defaults = Config().flat()
    args = str(run_config.get("overrides", "")).split()
    for key, value in run_config.items():
        if key in OWN_KEYS:
            continue
        text = _arg_text(value)
        if key in given or key not in defaults or text != _arg_text(defaults[key]):
            args.append(f"{key}={text}")
    return str(run_config.get("config", DEFAULT_CONFIG)), args


def _arg_text(value: Any) -> str:
    """A TOML run-config value as a `key=value` value: "" and None are null, booleans lower case."""
    if value is None or value == "":
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class BadInputOneLine(logging.Filter):
    """Drops Flower's record of a ServerApp's exception (logged with its whole traceback) when the
    exception is bad input (ConfigError, DataError), which the ServerApp reported in one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, (ConfigError, DataError))


def report_bad_input(error: Exception) -> None:
    """Print `error: <message>` (the line the CLI prints) and keep Flower from adding the traceback."""
    flwr_logger = logging.getLogger("flwr")
    if not any(isinstance(f, BadInputOneLine) for f in flwr_logger.filters):
        flwr_logger.addFilter(BadInputOneLine())
    print(f"error: {error}", file=sys.stderr, flush=True)
