"""snncc's benchmarks (``make bench`` runs them all: ``python -m benchmarks``).

Set before anything loads an OpenMP runtime (this package is imported before any
benchmark module, also for ``python -m benchmarks.bench_x``): acsim's numba kernels
and PyTorch each keep an OpenMP thread pool, and with the default busy-waiting the
idle pool's threads spin on the cores the other pool needs. On this 2-core machine
that made acsim's Spikingformer run 2-3x slower, and slower from run to run; passive
waiting leaves the cores to whichever pool is working. A value already in the
environment is kept.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
