"""Aggregate one comparison per seed: accuracy at upload caps as mean and range over seeds.

    python -m simulations.compare_seeds folders=[DIR_SEED0,DIR_SEED1] out=seeds.md [caps_gb=[...]]
"""

import sys

from fedsparse.compare.seeds_cli import main

if __name__ == "__main__":
    sys.exit(main())
