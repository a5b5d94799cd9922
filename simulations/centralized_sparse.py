"""Centralized sparse training (dense, fixed, rigl, set, gradual) on one process.

    python -m simulations.centralized_sparse [config=NAME_OR_PATH] [key=value ...]
"""

import sys

from fedsparse.centralized.cli import main

if __name__ == "__main__":
    sys.exit(main())
