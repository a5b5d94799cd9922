"""`python -m simulations.compare`: validate every method, run them in turn (resumably), report.

Comparison settings (`fedsparse.compare.config.CompareConfig`): config, methods, methods_file,
out, caps_gb, dense_budget; every other `key=value` is applied to each method's config (before
the method's own overrides). Bad input -> exit 2 and one line, before anything runs. Ctrl-C or
SIGTERM -> the running method stops resumably, then one line with the command that goes on (the
same command), exit 130 or 143.
"""

from __future__ import annotations

import logging
import shlex
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from fedsparse import usage
from fedsparse.compare.archive import archive_report
from fedsparse.compare.config import CHECKS, CompareConfig, load_comparison
from fedsparse.compare.report import write_report
from fedsparse.compare.runs import Stopped, run_all
from fedsparse.errors import ConfigError, DataError


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = sys.argv[1:] if argv is None else argv
    usage.exit_if_help(args, "simulations.compare", "[config=NAME_OR_PATH] [methods=[a,b]] [key=value ...]",
                       lambda: [usage.Section("Comparison settings (key=value)", CompareConfig(), CHECKS),
                                usage.run_settings(CompareConfig().config)],
                       "Every key=value that is not a comparison setting is a run setting, applied to "
                       "each method's config\nbefore the method's own keys (methods_file). Details: "
                       "docs/config.md, docs/results.md.")
    try:
        comp = load_comparison(args)
        print(f"comparison folder: {comp.folder}", flush=True)
        runs = run_all(comp, log=lambda line: print(line, flush=True))
        report = write_report(comp.folder, runs, comp.sparse, comp.settings.caps_gb)
        if comp.settings.archive:
            archive_report(comp.folder, Path(comp.settings.archive))  # the runs: as each finished
            print(f"archived the small outputs into {comp.settings.archive}")
    except (ConfigError, DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (Stopped, KeyboardInterrupt) as e:
        signum = e.signum if isinstance(e, Stopped) else signal.SIGINT
        where = f" while {e.method} ran (it stopped resumably: see the end of {e.logfile})" if isinstance(e, Stopped) else ""
        print(f"interrupted{where}; finished methods are kept. Go on with: "
              f"python -m simulations.compare {shlex.join(args)}", file=sys.stderr)
        return 128 + signum
    print(f"wrote {report}")
    return 0
