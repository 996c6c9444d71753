"""Estimate pi by Monte Carlo and write the estimate to ``result.json`` in the work dir."""

from __future__ import annotations

import json
import math
import random
import sys
import time


def main() -> None:
    samples = int(sys.argv[1]) if len(sys.argv) > 1 else 2_000_000
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 42
    rng = random.Random(seed)
    started = time.perf_counter()
    inside = sum(1 for _ in range(samples) if rng.random() ** 2 + rng.random() ** 2 <= 1.0)
    estimate = 4.0 * inside / samples
    result = {
        "samples": samples,
        "seed": seed,
        "pi": estimate,
        "error": abs(estimate - math.pi),
        "seconds": time.perf_counter() - started,
    }
    with open("result.json", "w") as handle:
        json.dump(result, handle, indent=2)
    print(f"pi ~= {estimate:.5f} (error {result['error']:.5f}, {samples} samples)")


if __name__ == "__main__":
    main()
