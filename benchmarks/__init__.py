"""snncc's benchmarks (``make bench`` runs them all: ``python -m benchmarks``).

One process setting, made here because this package is imported before any
benchmark module (also for ``python -m benchmarks.bench_x``), and printed by the
benchmarks that depend on it; it applies to every engine measured in the process.

glibc's ``malloc`` keeps freed blocks of up to 32 MiB (``mallopt``): by default every
array over 128 KiB is a fresh ``mmap`` that is returned on ``free``, so each new layer
output (acsim allocates one per op and time step) is paid again in page faults, which
took more time than the LIF arithmetic itself (acsim's LIF layer of 6.3 M neurons:
38 ms -> 7 ms); acsim's Spikingformer-4-384 ran at 11-15 images/s without it, varying
from run to run, and at 22-23 with it (2 cores). Skipped where the C library is not glibc,
or when ``SNNCC_BENCH_MALLOC=default`` (to measure without it).
"""

import ctypes
import ctypes.util
import os
from collections.abc import Callable

MALLOC_TUNED = False


def _tune_malloc() -> bool:
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    m_trim_threshold, m_top_pad, m_mmap_threshold = -1, -2, -3
    return bool(mallopt(m_mmap_threshold, 32 << 20) and mallopt(m_trim_threshold, 1 << 30)
                and mallopt(m_top_pad, 64 << 20))


MALLOC_TUNED = os.environ.get("SNNCC_BENCH_MALLOC") != "default" and _tune_malloc()


def best_of(fn: Callable[[], object], repeats: int = 3) -> float:
    """The fastest of ``repeats`` calls of ``fn``, in seconds (the machine's other load
    only ever adds time)."""
    import time

    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best
