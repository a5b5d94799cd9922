"""FedDST's CIFAR-10 setting (pathological 2 x 20 split, 400 clients) on Flower + Ray.

    python -m simulations.cifar_noniid [config=NAME_OR_PATH] [key=value ...]
"""

import sys

from fedsparse.runner import main

if __name__ == "__main__":
    sys.exit(main("cifar_noniid"))
