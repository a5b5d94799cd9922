"""`python -m simulations.compare`: validate every method, run them in turn (resumably), report.

Comparison settings (`fedsparse.compare.config.CompareConfig`): config, methods, methods_file,
out, caps_gb, dense_budget; every other `key=value` is applied to each method's config (before
the method's own overrides). Bad input -> exit 2 and one line, before anything runs.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from fedsparse.compare.config import load_comparison
from fedsparse.compare.report import write_report
from fedsparse.compare.runs import run_all
from fedsparse.errors import ConfigError, DataError


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        comp = load_comparison(sys.argv[1:] if argv is None else argv)
        print(f"comparison folder: {comp.folder}", flush=True)
        runs = run_all(comp, log=lambda line: print(line, flush=True))
        report = write_report(comp.folder, runs, comp.sparse, comp.settings.caps_gb)
    except (ConfigError, DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {report}")
    return 0
