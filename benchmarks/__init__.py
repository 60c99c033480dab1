"""snncc's benchmarks (``make bench`` runs them all: ``python -m benchmarks``).

Two process settings, made here because this package is imported before any
benchmark module (also for ``python -m benchmarks.bench_x``), and printed by the
benchmarks that depend on them. Both apply to every engine measured in the process.

``OMP_WAIT_POLICY=PASSIVE`` (before anything loads an OpenMP runtime): acsim's numba
kernels and PyTorch each keep an OpenMP thread pool, and with the default
busy-waiting the idle pool's threads spin on the cores the other pool needs. On a
2-core machine that made acsim's Spikingformer run 2-3x slower, and slower from run to
run; passive waiting leaves the cores to whichever pool works. A value already in the
environment is kept.

glibc's ``malloc`` keeps freed blocks of up to 32 MiB (``mallopt``): by default every
array over 128 KiB is a fresh ``mmap`` that is returned on ``free``, so each new layer
output (acsim allocates one per op and time step) is paid again in page faults, which
took more time than the LIF arithmetic itself (acsim's LIF layer of 6.3 M neurons:
38 ms -> 7 ms). Skipped where the C library is not glibc.
"""

import ctypes
import ctypes.util
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

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


MALLOC_TUNED = _tune_malloc()
