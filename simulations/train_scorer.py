"""Train the `learned` criterion's scorer (AutoSparse): survival labels from iterative rewind
pruning, then an MLP from initial features to labels, with a held-out validation split.

    python -m simulations.train_scorer [out=runs/autosparse/scorer.npz] [model=mnist_net] [key=value ...]
"""

import sys

from fedsparse.bench.autosparse import main

if __name__ == "__main__":
    sys.exit(main())
