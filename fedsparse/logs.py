"""Console logging of a run: one handler on stderr, quiet by default (`log_level`, `-v`).

Flower attaches its own console handler to the `flwr` logger, which also propagates to the root
logger, so each record used to be printed twice; `setup_logging` removes Flower's handler and lets
every record (fedsparse, Flower, Python warnings) go through one root handler at the chosen level.
Records that do not mean anything is wrong are demoted to DEBUG (`quiet_routine`): Flower's
deprecation notice of `flwr.simulation.run_simulation`, the Python API this project runs on on
purpose (docs/architecture.md "Flower versions and internals"); each client actor's "Manually terminating"
notice at shutdown; Flower's and the strategy's records of the client failures that
`client_failure_rate` injects on purpose (counted in each metrics row's `failures`); and the
one-line preface Flower logs before any client error's own records (which, for a real error,
follow at ERROR). They show with `log_level=debug`.
"""

from __future__ import annotations

import logging
import os
import sys

FORMAT = "%(levelname)s %(name)s: %(message)s"

# Substrings of the Flower and fedsparse records that do not mean anything is wrong.
ROUTINE_RECORDS = (
    "The `run_simulation` function is deprecated",
    "Manually terminating ClientAppActor",
    "An exception was raised when processing a message by",
    "fedsparse.fl.faults.InjectedFailure",
)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is at the time (a live progress bar redirects it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


class _DemoteRoutine(logging.Filter):
    """Turns `ROUTINE_RECORDS` into DEBUG records (a logger filter runs before handlers)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.DEBUG and any(
                s in record.getMessage() for s in ROUTINE_RECORDS):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return True


_DEMOTE = _DemoteRoutine()
_HANDLER: _StderrHandler | None = None


def quiet_routine() -> None:
    """Demote the routine records of Flower and fedsparse in this process (driver and client
    actors); idempotent."""
    for name in ("flwr", "fedsparse"):
        logger = logging.getLogger(name)
        if _DEMOTE not in logger.filters:
            logger.addFilter(_DEMOTE)


def setup_logging(level: str) -> None:
    """One stderr handler at `level` for every logger; Flower's own console handler removed.
    DEBUG records are shown for fedsparse and Flower only.

    Also sets `FLWR_LOG_LEVEL` for the client actors Ray starts after this call (their Flower
    logs reach this console through Ray). Calling it again only changes the level.
    """
    global _HANDLER
    from flwr.common.logger import console_handler

    numeric = logging.getLevelName(level.upper())
    logging.getLogger("flwr").removeHandler(console_handler)
    quiet_routine()
    root = logging.getLogger()
    if _HANDLER is None:
        _HANDLER = _StderrHandler()
        _HANDLER.setFormatter(logging.Formatter(FORMAT))
        root.addHandler(_HANDLER)
    _HANDLER.setLevel(numeric)
    root.setLevel(max(numeric, logging.INFO))  # other libraries' DEBUG (matplotlib's fonts) stays out
    logging.getLogger("fedsparse").setLevel(numeric)
    logging.captureWarnings(True)
    os.environ["FLWR_LOG_LEVEL"] = level.upper()
