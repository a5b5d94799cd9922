"""Pruning-method bench: criteria x sparsities x splits x scoring, each cell a federated run.

    python -m simulations.pruning_bench [preset=small] [config=NAME_OR_PATH] [key=value ...]
"""

import sys

from fedsparse.bench.cli import main

if __name__ == "__main__":
    sys.exit(main())
