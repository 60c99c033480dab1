"""`make bench`: every benchmark, each printing its figures and ratios."""

from __future__ import annotations

import importlib
import sys

BENCHMARKS = ["benchmarks.bench_frontend", "benchmarks.bench_dts", "benchmarks.bench_acsim",
              "benchmarks.bench_acsim_model", "benchmarks.bench_spikingformer_speed",
              "benchmarks.bench_lower", "benchmarks.bench_lava"]


def main() -> None:
    only = sys.argv[1:]
    for name in BENCHMARKS:
        if only and not any(o in name for o in only):
            continue
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name == name:
                continue  # not written yet
            raise
        print(f"\n=== {name} ===", flush=True)
        module.main()


if __name__ == "__main__":
    main()
