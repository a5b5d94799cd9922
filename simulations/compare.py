"""Run several methods on the same split and seed and compare them at equal upload budgets.

    python -m simulations.compare [config=NAME_OR_PATH] [methods=[fedavgm,feddst]] [key=value ...]
"""

import sys

from fedsparse.compare.cli import main

if __name__ == "__main__":
    sys.exit(main())
