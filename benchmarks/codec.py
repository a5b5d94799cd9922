"""Position codecs on seeded random masks of 10^6 weights: bits per weight vs the entropy floor
H(d), and encode/decode throughput. Run: `python -m benchmarks.codec`."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

import numpy as np

from fedsparse import usage
from fedsparse.comm import entropy_bits, position_codec

N = 1_000_000
DENSITIES = (0.5, 0.2, 0.1, 0.05, 0.01)
CODECS = ("bitmap", "index", "golomb", "auto")
REPEATS = 5


def best_seconds(fn: Callable[[], object]) -> float:
    """Fastest of REPEATS calls (least disturbed by other load)."""
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    usage.exit_if_help(sys.argv[1:], "benchmarks.codec", "", list)
    summary: dict[str, str] = {}
    print(f"n = {N:,} weights per mask, best of {REPEATS} runs; throughput in M weights/s")
    columns = ("density", "H(d)", "codec", "bits/w", "x H(d)", "enc M/s", "dec M/s")
    print(" ".join(f"{c:>8}" for c in columns))
    for seed, density in enumerate(DENSITIES):
        mask = np.random.default_rng(seed).random(N) < density
        floor = entropy_bits(N, float(mask.mean())) / N
        for name in CODECS:
            codec = position_codec(name)
            buf = codec.encode(mask)
            if not np.array_equal(codec.decode(buf, N), mask):
                raise AssertionError(f"{name} failed to round-trip at density {density}")
            bits = 8 * buf.size / N
            enc = N / best_seconds(lambda: codec.encode(mask)) / 1e6
            dec = N / best_seconds(lambda: codec.decode(buf, N)) / 1e6
            ratio = bits / floor
            print(f"{density:>8} {floor:>8.4f} {name:>8} {bits:>8.4f} {ratio:>8.3f} "
                  f"{enc:>8.0f} {dec:>8.0f}")
            if name == "golomb":
                summary[f"golomb_over_entropy_d{density}"] = f"{bits / floor:.4f}"
                summary[f"golomb_enc_Mws_d{density}"] = f"{enc:.0f}"
                summary[f"golomb_dec_Mws_d{density}"] = f"{dec:.0f}"
    print(" ".join(f"{key}={value}" for key, value in summary.items()))


if __name__ == "__main__":
    main()
